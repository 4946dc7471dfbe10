/*
 * strait DPDK shim: callable wrappers around DPDK's `static inline` functions and
 * accessors for `struct rte_mbuf` fields, so that Rust never depends on inline code
 * or on the mbuf bitfield layout (tx_offload is a union of bitfields).
 *
 * Every symbol is prefixed `strait_`. Constants that DPDK defines through the
 * function-like macro RTE_BIT64() (which bindgen cannot evaluate) are re-declared
 * here as `static const` so bindgen emits them as Rust constants.
 */
#ifndef STRAIT_DPDK_SHIM_H
#define STRAIT_DPDK_SHIM_H

#include <errno.h>
#include <stdint.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_interrupts.h>
#include <rte_epoll.h>

/* ---- constants hidden behind RTE_BIT64() ---- */
static const uint64_t STRAIT_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
static const uint64_t STRAIT_ETH_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
static const uint64_t STRAIT_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
static const uint64_t STRAIT_ETH_TX_OFFLOAD_TCP_TSO = RTE_ETH_TX_OFFLOAD_TCP_TSO;
static const uint64_t STRAIT_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
static const uint64_t STRAIT_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
static const uint64_t STRAIT_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
static const uint64_t STRAIT_ETH_RX_OFFLOAD_UDP_CKSUM = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
static const uint64_t STRAIT_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
static const uint64_t STRAIT_ETH_RX_OFFLOAD_SCATTER = RTE_ETH_RX_OFFLOAD_SCATTER;
static const int STRAIT_ENOTSUP = ENOTSUP;
static const uint64_t STRAIT_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
static const uint64_t STRAIT_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t STRAIT_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t STRAIT_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
static const uint32_t STRAIT_MBUF_MAX_NB_SEGS = RTE_MBUF_MAX_NB_SEGS;
static const uint32_t STRAIT_LCORE_ID_ANY = LCORE_ID_ANY;
static const uint32_t STRAIT_MAX_LCORE = RTE_MAX_LCORE;
static const int32_t STRAIT_SOCKET_ID_ANY = SOCKET_ID_ANY;
static const uint16_t STRAIT_MBUF_DEFAULT_DATAROOM = RTE_MBUF_DEFAULT_DATAROOM;
static const uint16_t STRAIT_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM;
/* RTE_MEMPOOL_NAMESIZE is computed with sizeof(), which bindgen cannot evaluate. */
static const uint32_t STRAIT_MEMPOOL_NAMESIZE = RTE_MEMPOOL_NAMESIZE;

/* ---- errors ---- */
int strait_rte_errno(void);

/* ---- lcore / time ---- */
unsigned int strait_lcore_id(void);
uint64_t strait_rdtsc(void);
uint64_t strait_get_tsc_hz(void);

/* ---- ethdev fast path ---- */
uint16_t strait_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t strait_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
uint16_t strait_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
			       struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/* 1 = up, 0 = down, negative errno on error (struct rte_eth_link has bitfields). */
int strait_eth_link_status(uint16_t port_id);

/* ---- mbuf ---- */
struct rte_mbuf *strait_pktmbuf_alloc(struct rte_mempool *mp);
int strait_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			      unsigned int count);
void strait_pktmbuf_free(struct rte_mbuf *m);
char *strait_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *strait_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *strait_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int strait_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int strait_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
uint16_t strait_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
uint16_t strait_mbuf_refcnt_read(const struct rte_mbuf *m);
void strait_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
int strait_mbuf_data_exclusive(const struct rte_mbuf *m);
void *strait_pktmbuf_mtod(const struct rte_mbuf *m);
uint16_t strait_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t strait_pktmbuf_tailroom(const struct rte_mbuf *m);
struct rte_mbuf *strait_pktmbuf_lastseg(struct rte_mbuf *m);

/* mbuf field accessors */
uint64_t strait_mbuf_ol_flags(const struct rte_mbuf *m);
void strait_mbuf_set_ol_flags(struct rte_mbuf *m, uint64_t flags);
uint32_t strait_mbuf_packet_type(const struct rte_mbuf *m);
uint32_t strait_mbuf_rss_hash(const struct rte_mbuf *m);
uint16_t strait_mbuf_data_len(const struct rte_mbuf *m);
uint32_t strait_mbuf_pkt_len(const struct rte_mbuf *m);
uint16_t strait_mbuf_nb_segs(const struct rte_mbuf *m);
struct rte_mbuf *strait_mbuf_next(const struct rte_mbuf *m);
struct rte_mempool *strait_mbuf_pool(const struct rte_mbuf *m);
uint16_t strait_mbuf_port(const struct rte_mbuf *m);
void strait_mbuf_set_tx_offload(struct rte_mbuf *m, uint16_t l2_len, uint16_t l3_len,
				uint16_t l4_len, uint16_t tso_segsz);
uint16_t strait_mbuf_l2_len(const struct rte_mbuf *m);
uint16_t strait_mbuf_l3_len(const struct rte_mbuf *m);
uint16_t strait_mbuf_l4_len(const struct rte_mbuf *m);
uint16_t strait_mbuf_tso_segsz(const struct rte_mbuf *m);

/* ---- mempool ---- */
unsigned int strait_mempool_avail_count(const struct rte_mempool *mp);
unsigned int strait_mempool_in_use_count(const struct rte_mempool *mp);
/* rte_pktmbuf_pool_create with its objects packed back to back (RTE_MEMPOOL_F_NO_IOVA_CONTIG:
 * no gap where an object would cross a page boundary), as DPDK 22.11's net_af_xdp needs
 * for its UMEM. NULL + rte_errno on error. */
struct rte_mempool *strait_pktmbuf_pool_create_packed(const char *name, unsigned int n,
						      unsigned int cache_size,
						      uint16_t data_room_size, int socket_id);
/* How the pool's objects lie in memory, as DPDK 22.11's net_af_xdp sees them: it registers
 * one UMEM from the first memory chunk's address over populated_size * object size bytes
 * (get_base_addr, xdp_umem_configure). Writes the number of memory chunks, the object size
 * (header + element + trailer) and how many objects start outside that span (0: the pool
 * fits the PMD's assumption). Returns 0, or -EINVAL for a pool without memory. */
int strait_mempool_umem_fit(const struct rte_mempool *mp, uint32_t *chunks,
			    uint32_t *obj_size, uint32_t *outside);

/* ---- ring ---- */
unsigned int strait_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
				       unsigned int n, unsigned int *free_space);
unsigned int strait_ring_dequeue_burst(struct rte_ring *r, void **objs,
				       unsigned int n, unsigned int *available);
unsigned int strait_ring_count(const struct rte_ring *r);

/* ---- checksums ---- */
uint16_t strait_ipv4_phdr_cksum(const struct rte_ipv4_hdr *ipv4_hdr, uint64_t ol_flags);

/* ---- RX interrupts (the calling thread's DPDK epoll instance) ---- */
/* Adds RX queue `queue_id` of `port_id` to the calling thread's epoll instance
 * (rte_eth_dev_rx_intr_ctl_q with RTE_EPOLL_PER_THREAD); 0 or a negative errno. */
int strait_rx_intr_register(uint16_t port_id, uint16_t queue_id);
/* Adds `fd` (readable = wake up) to the calling thread's epoll instance, level
 * triggered; the event record is thread-local, so one fd per thread. 0 or -1. */
int strait_epoll_add_wake_fd(int fd);
/* 1 if `fd` is an AF_XDP socket (SO_DOMAIN), else 0. */
int strait_fd_is_xsk(int fd);
/* Adds `fd` (readable = work to do, e.g. an AF_XDP socket with frames in its RX ring) to
 * the calling thread's epoll instance; up to 32 per thread. 0 or a negative errno. */
int strait_epoll_add_fd(int fd);
/* Waits up to `timeout_ms` on the calling thread's epoll instance; the number of
 * events (0 on timeout), or -1 on error. */
int strait_epoll_wait(int timeout_ms);

#endif /* STRAIT_DPDK_SHIM_H */
