/*
 * Topology (hwloc): what this rank may run on, its share of the node's
 * cores, NUMA-local memory, and the GPUs it holds.
 *
 * Start-up, in order: tr__topo_load() (hwloc, the launcher's cpuset, the
 * machine's GPUs and memory), tr__topo_start_set() (the string every rank
 * publishes), then, once the caller gathered every rank's string,
 * tr__topo_split() (this rank's share and GPUs), then tr__topo_gpu_env()
 * before any thread that may use a GPU starts.
 */
#ifndef TR_TOPO_H
#define TR_TOPO_H

#include <taskray.h>
#include <stddef.h>
#include <stdint.h>

#define TR__TOPO_SET_LEN 128   /* a cpuset as an hwloc list ("0-3,8-11"), as in tr_rank_info_t */

enum { TR__GPU_NVIDIA = 1, TR__GPU_AMD = 2 };

typedef struct tr__gpu {
    int   device;     /* number in CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES */
    int   vendor;     /* TR__GPU_NVIDIA or TR__GPU_AMD */
    char  osdev[16];  /* hwloc OS device ("cuda0", "rsmi1", "opencl0d0"); "" when hwloc has none */
    char  busid[16];  /* "0000:65:00.0" */
    char  name[64];
    char  near[TR__TOPO_SET_LEN];   /* PUs near it (hwloc list) */
    void *near_set;   /* hwloc_bitmap_t of the same */
} tr__gpu_t;

typedef struct tr__topo {
    int ncores_bound;  /* cores in this rank's share (the launcher's set split among its co-bound ranks) */
    int npus_bound;    /* hardware threads in the share */
    int numa_node;     /* os index of the share's NUMA node, -1 when unknown/several */
    int nnuma;         /* NUMA nodes of the machine */
    void *hw;          /* hwloc_topology_t */
    void *cpuset;      /* hwloc_bitmap_t: the share */
    int   synthetic;   /* TASKRAY_TOPOLOGY: not this machine, bind nothing */
    int   bind;        /* TASKRAY_BIND: 1 core (default), 0 none */
    int   exclusive;   /* the share has a core no other rank of the node uses */
    int   bound;       /* executor threads are bound one per core */
    uint64_t node_memory;   /* bytes of the machine (NUMA local memory summed) */
    tr__gpu_t *all;    /* every GPU of the machine, PCI bus order */
    int        nall;
    int       *held;   /* indices into all[] of the GPUs this rank holds */
    int        nheld;
} tr__topo_t;

tr_status_t tr__topo_load(tr__topo_t *topo);
void        tr__topo_destroy(tr__topo_t *topo);

/* The launcher's cpuset of this rank as a string to publish to the other
 * ranks (@len bytes, NUL-padded); "" when it does not fit (then this rank
 * keeps its set unsplit). */
void        tr__topo_start_set(const tr__topo_t *topo, char *buf, size_t len);
/* Split the launcher's set among the ranks of this node that were given the
 * same one, and assign the node's GPUs: @sets holds @size strings of @stride
 * bytes (rank order, from tr__topo_start_set(), untrusted), @node_of the node
 * of each rank.  Deterministic: every rank of a node computes the same. */
tr_status_t tr__topo_split(tr__topo_t *topo, const char *sets, size_t stride, const int *node_of,
                           int size, int rank);
/* Export the GPUs held to CUDA_VISIBLE_DEVICES (+ CUDA_DEVICE_ORDER) or
 * HIP_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES, leaving a variable the user
 * set alone.  Call before threads start (setenv). */
void        tr__topo_gpu_env(const tr__topo_t *topo);

/* Bind the calling executor thread number @index to core @index mod ncores
 * of the share.  0 when bound, 1 when not applicable (TASKRAY_BIND=none,
 * synthetic topology, no core of its own), -1 when hwloc refused (logged). */
int         tr__topo_bind_thread(tr__topo_t *topo, int index);
/* Bind [base, base+size) to the NUMA node(s) of this rank's share before it
 * is touched.  0 when bound, 1 when not applicable (one node, synthetic
 * topology), -1 when hwloc refused (logged). */
int         tr__topo_bind_area(tr__topo_t *topo, void *base, size_t size);

/* The share as an hwloc list ("0-3"). */
void        tr__topo_cpuset_string(const tr__topo_t *topo, char *buf, size_t len);
/* GPUs this rank holds, and the device number of the @i-th (-1 out of range). */
int         tr__topo_ngpus(const tr__topo_t *topo);
int         tr__topo_gpu_device(const tr__topo_t *topo, int i);
/* The @i-th GPU held, NULL out of range. */
const tr__gpu_t *tr__topo_gpu(const tr__topo_t *topo, int i);

#endif
