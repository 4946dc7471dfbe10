/*
 * pktgen.c: a minimal kernel-side frame generator for the L2 reflector ceiling
 * (deploy/bench/run.sh). The kernel's own pktgen module is not available everywhere
 * (not in this VM's kernel), and a Python raw-socket loop tops out far below a tap PMD.
 *
 * Sends the same Ethernet frame as fast as it can on interface IFNAME for SECONDS, with
 * an AF_PACKET socket, sendmmsg() batches of 64 and PACKET_QDISC_BYPASS. The destination
 * is a locally administered address, the source is the interface's own MAC (so the
 * reflected frame, addresses swapped, is addressed back to it), the EtherType is 0x88B5
 * (IEEE 802 local experimental). Frames the tap's queue does not take are dropped by the
 * kernel (the interface's tx_dropped), never blocked on.
 *
 *   cc -O2 -o pktgen pktgen.c && ./pktgen IFNAME SECONDS [FRAME_BYTES]
 *
 * Prints: "sent N seconds S pps P".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s IFNAME SECONDS [FRAME_BYTES]\n", argv[0]);
        return 2;
    }
    const char *ifname = argv[1];
    double seconds = atof(argv[2]);
    int len = argc > 3 ? atoi(argv[3]) : 60;
    if (len < 60 || len > 1514 || seconds <= 0) {
        fprintf(stderr, "FRAME_BYTES must be 60..1514 and SECONDS > 0\n");
        return 2;
    }
    /* Protocol 0: a send-only socket, so the reflected frames are not queued to it. */
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
        perror("PACKET_QDISC_BYPASS (continuing through the qdisc)");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); return 1; }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); return 1; }

    unsigned char frame[1514];
    memset(frame, 0x5a, sizeof frame);
    const unsigned char dst[6] = {0x02, 0x00, 0x00, 0x00, 0xbe, 0x01};
    memcpy(frame, dst, 6);
    memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;

    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    memcpy(to.sll_addr, dst, 6);

    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = frame;
        iov[i].iov_len = (size_t)len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
    }

    unsigned long long sent = 0, loops = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
            perror("sendmmsg");
            return 1;
        }
        if (n > 0) sent += (unsigned long long)n;
        if ((++loops & 63) == 0 || n <= 0) t = now();
    }
    double took = now() - start;
    printf("sent %llu seconds %.2f pps %.0f\n", sent, took, sent / took);
    close(fd);
    return 0;
}
