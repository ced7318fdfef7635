// SPDX-License-Identifier: GPL-2.0

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/cpumask.h>
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

struct gendisk *rust_helper_vrs_dev_to_disk(struct device *dev)
{
	return dev_to_disk(dev);
}

unsigned int rust_helper_vrs_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/*
 * Maps the data of @rq into @table, using the @inline_n entries at @first
 * first and chaining a GFP_ATOMIC allocation for more, as virtio_blk.c does.
 * Returns the number of entries used (0 for no data), or -ENOMEM; on
 * success with entries, free with rust_helper_vrs_blk_rq_unmap_sg().
 */
int rust_helper_vrs_blk_rq_map_sg(struct request *rq, struct sg_table *table,
				  struct scatterlist *first,
				  unsigned int inline_n)
{
	unsigned short segs = blk_rq_nr_phys_segments(rq);
	int n;

	table->sgl = first;
	table->nents = 0;
	table->orig_nents = 0;
	if (!segs)
		return 0;
	if (sg_alloc_table_chained(table, segs, first, inline_n))
		return -ENOMEM;
	n = blk_rq_map_sg(rq->q, rq, table->sgl);
	if (n <= 0) {
		sg_free_table_chained(table, inline_n);
		table->orig_nents = 0;
		return n < 0 ? n : -EINVAL;
	}
	return n;
}

void rust_helper_vrs_blk_rq_unmap_sg(struct sg_table *table,
				     unsigned int inline_n)
{
	if (table->orig_nents)
		sg_free_table_chained(table, inline_n);
	table->orig_nents = 0;
}

struct queue_limits rust_helper_queue_limits_start_update(struct request_queue *q)
{
	return queue_limits_start_update(q);
}

unsigned short rust_helper_req_get_ioprio(struct request *rq)
{
	return req_get_ioprio(rq);
}
