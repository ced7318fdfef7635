// SPDX-License-Identifier: GPL-2.0

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/bvec.h>

enum req_op rust_helper_req_op(const struct request *rq)
{
	return req_op(rq);
}

sector_t rust_helper_blk_rq_pos(const struct request *rq)
{
	return blk_rq_pos(rq);
}

unsigned int rust_helper_blk_rq_bytes(const struct request *rq)
{
	return blk_rq_bytes(rq);
}

unsigned short rust_helper_blk_rq_nr_phys_segments(struct request *rq)
{
	return blk_rq_nr_phys_segments(rq);
}

/*
 * Stores the linear-map address and length of the data segments of @rq
 * (one per multi-page bio_vec, as rq_for_each_bvec() walks them, split at
 * the queue's max_segment_size as the block layer does when it counts
 * segments), skipping the first @skip, into @addrs and @lens, at most @max
 * of them. Returns the number stored. Special-payload requests (discard...)
 * have no data here.
 */
unsigned int rust_helper_blk_rq_virt_segments(struct request *rq,
					      unsigned int skip, void **addrs,
					      unsigned int *lens,
					      unsigned int max)
{
	struct req_iterator iter;
	struct bio_vec bv;
	unsigned int i = 0, n = 0;
	unsigned int mss = queue_max_segment_size(rq->q);

	if (!blk_rq_bytes(rq) || (rq->rq_flags & RQF_SPECIAL_PAYLOAD))
		return 0;
	rq_for_each_bvec(bv, rq, iter) {
		unsigned int off = 0;

		while (off < bv.bv_len) {
			unsigned int len = min(bv.bv_len - off, mss);

			if (i++ >= skip) {
				if (n == max)
					return n;
				addrs[n] = bvec_virt(&bv) + off;
				lens[n] = len;
				n++;
			}
			off += len;
		}
	}
	return n;
}

sector_t rust_helper_get_capacity(struct gendisk *disk)
{
	return get_capacity(disk);
}
