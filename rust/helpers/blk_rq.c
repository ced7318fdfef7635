// SPDX-License-Identifier: GPL-2.0

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/scatterlist.h>

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

sector_t rust_helper_get_capacity(struct gendisk *disk)
{
	return get_capacity(disk);
}

unsigned short rust_helper_blk_rq_nr_discard_segments(struct request *rq)
{
	return blk_rq_nr_discard_segments(rq);
}

struct gendisk *rust_helper_dev_to_disk(struct device *dev)
{
	return dev_to_disk(dev);
}

int rust_helper_blk_rq_map_sg(struct request_queue *q, struct request *rq,
			      struct scatterlist *sglist)
{
	return blk_rq_map_sg(q, rq, sglist);
}

struct queue_limits rust_helper_queue_limits_start_update(struct request_queue *q)
{
	return queue_limits_start_update(q);
}

unsigned short rust_helper_req_get_ioprio(struct request *rq)
{
	return req_get_ioprio(rq);
}
