/* Public entry points that describe the job: ranks as placed, configuration in force. */
#include "core/core.h"

tr_status_t tr_rank_info(int rank, tr_rank_info_t *info_p)
{
    if (atomic_load(&tr__state) != 1) return TR_ERR_NOT_INITIALIZED;
    tr__rt_t *rt = tr__rt;
    if (info_p == NULL || rank < 0 || rank >= rt->size) return TR_ERR_INVALID_ARG;
    if (rt->info == NULL) return TR_ERR_NOT_INITIALIZED;
    *info_p = rt->info[rank];
    return TR_OK;
}

int tr_config_list(tr_config_item_t *items, int max)
{
    if (atomic_load(&tr__state) != 1) return -1;
    if (max < 0 || (items == NULL && max > 0)) return -1;
    return tr__config_copy(items, max);
}
