/*
 * strait DPDK shim: out-of-line wrappers for DPDK's static inline functions and
 * rte_mbuf field accessors. See shim.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "shim.h"

#include <rte_mbuf_pool_ops.h>

int strait_rte_errno(void) { return rte_errno; }

unsigned int strait_lcore_id(void) { return rte_lcore_id(); }
uint64_t strait_rdtsc(void) { return rte_rdtsc(); }
uint64_t strait_get_tsc_hz(void) { return rte_get_tsc_hz(); }

uint16_t strait_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t strait_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			     struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint16_t strait_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
			       struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_prepare(port_id, queue_id, tx_pkts, nb_pkts);
}

int strait_eth_link_status(uint16_t port_id)
{
	struct rte_eth_link link;
	int rc;

	memset(&link, 0, sizeof(link));
	rc = rte_eth_link_get_nowait(port_id, &link);
	if (rc < 0)
		return rc;
	return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

struct rte_mbuf *strait_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int strait_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			      unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void strait_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

char *strait_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *strait_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *strait_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int strait_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }

/*
 * rte_pktmbuf_chain() also rewrites tail->pkt_len (to tail->data_len). When the tail is
 * shared (its refcount was raised to keep a queued original, see Mbuf::clone_ref), that
 * field belongs to the other holder too, so for a shared tail we link it without
 * touching it; pkt_len of a non-first segment is not used by DPDK.
 */
int strait_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail)
{
	struct rte_mbuf *cur_tail;

	if (rte_mbuf_refcnt_read(tail) == 1)
		return rte_pktmbuf_chain(head, tail);
	if ((uint32_t)head->nb_segs + tail->nb_segs > RTE_MBUF_MAX_NB_SEGS)
		return -EOVERFLOW;
	cur_tail = rte_pktmbuf_lastseg(head);
	cur_tail->next = tail;
	head->nb_segs += tail->nb_segs;
	head->pkt_len += tail->pkt_len;
	return 0;
}

uint16_t strait_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{
	return rte_mbuf_refcnt_update(m, value);
}

uint16_t strait_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }

void strait_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{
	rte_pktmbuf_refcnt_update(m, value);
}

/* 1 when nobody else can see this segment's data buffer: a single reference to the
 * mbuf and, for indirect / external-buffer mbufs, to the buffer it points at. */
int strait_mbuf_data_exclusive(const struct rte_mbuf *m)
{
	if (rte_mbuf_refcnt_read(m) != 1)
		return 0;
	if (RTE_MBUF_HAS_EXTBUF(m))
		return rte_mbuf_ext_refcnt_read(m->shinfo) == 1;
	if (RTE_MBUF_CLONED(m))
		return rte_mbuf_refcnt_read(rte_mbuf_from_indirect((struct rte_mbuf *)m)) == 1;
	return 1;
}

void *strait_pktmbuf_mtod(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t strait_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t strait_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
struct rte_mbuf *strait_pktmbuf_lastseg(struct rte_mbuf *m) { return rte_pktmbuf_lastseg(m); }

uint64_t strait_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
void strait_mbuf_set_ol_flags(struct rte_mbuf *m, uint64_t flags) { m->ol_flags = flags; }
uint32_t strait_mbuf_packet_type(const struct rte_mbuf *m) { return m->packet_type; }
uint32_t strait_mbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }
uint16_t strait_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }
uint32_t strait_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
uint16_t strait_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
struct rte_mbuf *strait_mbuf_next(const struct rte_mbuf *m) { return m->next; }
struct rte_mempool *strait_mbuf_pool(const struct rte_mbuf *m) { return m->pool; }
uint16_t strait_mbuf_port(const struct rte_mbuf *m) { return m->port; }

void strait_mbuf_set_tx_offload(struct rte_mbuf *m, uint16_t l2_len, uint16_t l3_len,
				uint16_t l4_len, uint16_t tso_segsz)
{
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
	m->tso_segsz = tso_segsz;
}

uint16_t strait_mbuf_l2_len(const struct rte_mbuf *m) { return m->l2_len; }
uint16_t strait_mbuf_l3_len(const struct rte_mbuf *m) { return m->l3_len; }
uint16_t strait_mbuf_l4_len(const struct rte_mbuf *m) { return m->l4_len; }
uint16_t strait_mbuf_tso_segsz(const struct rte_mbuf *m) { return m->tso_segsz; }

unsigned int strait_mempool_avail_count(const struct rte_mempool *mp)
{
	return rte_mempool_avail_count(mp);
}

unsigned int strait_mempool_in_use_count(const struct rte_mempool *mp)
{
	return rte_mempool_in_use_count(mp);
}

struct rte_mempool *strait_pktmbuf_pool_create_packed(const char *name, unsigned int n,
						      unsigned int cache_size,
						      uint16_t data_room_size, int socket_id)
{
	/* rte_pktmbuf_pool_create_by_ops (lib/mbuf/rte_mbuf.c), with one flag more. */
	struct rte_pktmbuf_pool_private priv;
	struct rte_mempool *mp;
	int ret;

	memset(&priv, 0, sizeof(priv));
	priv.mbuf_data_room_size = data_room_size;
	priv.mbuf_priv_size = 0;
	mp = rte_mempool_create_empty(name, n, sizeof(struct rte_mbuf) + data_room_size,
				      cache_size, sizeof(struct rte_pktmbuf_pool_private),
				      socket_id, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	ret = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (ret != 0) {
		rte_mempool_free(mp);
		rte_errno = -ret;
		return NULL;
	}
	rte_pktmbuf_pool_init(mp, &priv);
	ret = rte_mempool_populate_default(mp);
	if (ret < 0) {
		rte_mempool_free(mp);
		rte_errno = -ret;
		return NULL;
	}
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
}

struct umem_fit {
	uintptr_t base;
	uintptr_t end;
	uint32_t outside;
};

static void umem_fit_obj(struct rte_mempool *mp, void *opaque, void *obj, unsigned int idx)
{
	struct umem_fit *f = opaque;
	/* The PMD addresses an mbuf by its object header (mbuf - header_size). */
	uintptr_t start = (uintptr_t)obj - mp->header_size;
	uintptr_t stop = (uintptr_t)obj + mp->elt_size + mp->trailer_size;
	(void)idx;
	if (start < f->base || stop > f->end)
		f->outside++;
}

int strait_mempool_umem_fit(const struct rte_mempool *mp, uint32_t *chunks,
			    uint32_t *obj_size, uint32_t *outside)
{
	struct rte_mempool *m = (struct rte_mempool *)mp;
	struct rte_mempool_memhdr *first = STAILQ_FIRST(&m->mem_list);
	struct umem_fit f;
	uint32_t size = m->header_size + m->elt_size + m->trailer_size;

	if (first == NULL)
		return -EINVAL;
	f.base = (uintptr_t)first->addr;
	f.end = f.base + (uintptr_t)m->populated_size * size;
	f.outside = 0;
	rte_mempool_obj_iter(m, umem_fit_obj, &f);
	*chunks = m->nb_mem_chunks;
	*obj_size = size;
	*outside = f.outside;
	return 0;
}

unsigned int strait_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
				       unsigned int n, unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, objs, n, free_space);
}

unsigned int strait_ring_dequeue_burst(struct rte_ring *r, void **objs,
				       unsigned int n, unsigned int *available)
{
	return rte_ring_dequeue_burst(r, objs, n, available);
}

unsigned int strait_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

uint16_t strait_ipv4_phdr_cksum(const struct rte_ipv4_hdr *ipv4_hdr, uint64_t ol_flags)
{
	return rte_ipv4_phdr_cksum(ipv4_hdr, ol_flags);
}

int strait_rx_intr_register(uint16_t port_id, uint16_t queue_id)
{
	return rte_eth_dev_rx_intr_ctl_q(port_id, queue_id, RTE_EPOLL_PER_THREAD,
					 RTE_INTR_EVENT_ADD, NULL);
}

/* Registered with epoll by address: it must outlive the registration, which lasts as
 * long as the thread (the epoll instance is per thread too). */
static __thread struct rte_epoll_event strait_wake_event;

int strait_epoll_add_wake_fd(int fd)
{
	memset(&strait_wake_event, 0, sizeof(strait_wake_event));
	strait_wake_event.epdata.event = EPOLLIN;
	return rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, fd, &strait_wake_event);
}

int strait_fd_is_xsk(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
		return 0;
	return domain == AF_XDP;
}

#define STRAIT_MAX_WAIT_FDS 32
/* Registered with epoll by address: they must outlive the registrations (the thread). */
static __thread struct rte_epoll_event strait_fd_events[STRAIT_MAX_WAIT_FDS];
static __thread int strait_fd_events_used;

int strait_epoll_add_fd(int fd)
{
	struct rte_epoll_event *ev;

	if (strait_fd_events_used >= STRAIT_MAX_WAIT_FDS)
		return -ENOSPC;
	ev = &strait_fd_events[strait_fd_events_used++];
	memset(ev, 0, sizeof(*ev));
	ev->epdata.event = EPOLLIN;
	return rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, fd, ev);
}

int strait_epoll_wait(int timeout_ms)
{
	struct rte_epoll_event events[8];
	return rte_epoll_wait(RTE_EPOLL_PER_THREAD, events, 8, timeout_ms);
}
