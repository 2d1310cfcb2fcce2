#include "sched/sched.h"
#include "base/base.h"

#include <ctype.h>
#include <stdio.h>

tr_status_t tr__req_parse(const char *spec, tr__req_t *req)
{
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == '\0') break;
        const char *eq = strchr(p, '=');
        size_t n = eq ? (size_t)(eq - p) : 0;
        if (eq == NULL || n == 0 || n >= TR__RES_NAME_LEN) {
            tr__set_error("bad resource list '%s': expected name=amount[,name=amount...] with names shorter than %d characters",
                          spec, TR__RES_NAME_LEN);
            return TR_ERR_INVALID_ARG;
        }
        char *end;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || !(v >= 0) || v > 1e12 || (*end != '\0' && *end != ',' && *end != ' ')) {
            tr__set_error("bad amount in resource list '%s'", spec);
            return TR_ERR_INVALID_ARG;
        }
        char name[TR__RES_NAME_LEN];
        memcpy(name, p, n); name[n] = '\0';
        int i;
        for (i = 0; i < req->nres; i++)
            if (strcmp(req->res[i].name, name) == 0) break;
        if (i == req->nres) {
            if (req->nres == TR__MAX_RES) {
                tr__set_error("more than %d custom resources in '%s'", TR__MAX_RES, spec);
                return TR_ERR_INVALID_ARG;
            }
            req->nres++;
            snprintf(req->res[i].name, TR__RES_NAME_LEN, "%s", name);
        }
        req->res[i].amount = v;
        p = end;
    }
    return TR_OK;
}

double tr__req_get(const tr__req_t *r, const char *name)
{
    for (int i = 0; i < r->nres; i++)
        if (strcmp(r->res[i].name, name) == 0) return r->res[i].amount;
    return 0;
}

int tr__req_fits(const tr__req_t *have, const tr__req_t *need, const char **why)
{
    if (need->cpus > have->cpus + 1e-9) { *why = "cpus"; return 0; }
    for (int i = 0; i < need->nres; i++) {
        if (need->res[i].amount <= 0) continue;
        if (tr__req_get(have, need->res[i].name) + 1e-9 < need->res[i].amount) {
            *why = need->res[i].name;
            return 0;
        }
    }
    return 1;
}

tr_status_t tr__sched_init(tr__sched_t *s, tr__boot_t *boot, const tr__req_t *mine)
{
    memset(s, 0, sizeof(*s));
    s->size = boot->size;
    s->self = boot->rank;
    s->totals = calloc((size_t)s->size, sizeof(tr__req_t));
    s->load = calloc((size_t)s->size, sizeof(int));
    s->dead = calloc((size_t)s->size, 1);
    if (s->totals == NULL || s->load == NULL || s->dead == NULL) { tr__sched_destroy(s); return TR_ERR_NO_MEMORY; }
    s->cursor = boot->rank;
    tr_status_t st = tr__boot_allgather(boot, mine, sizeof(*mine), s->totals);
    if (st != TR_OK) { tr__sched_destroy(s); return st; }
    for (int r = 0; r < s->size; r++) {   /* peers are untrusted: sanitize */
        tr__req_t *t = &s->totals[r];
        if (t->nres < 0 || t->nres > TR__MAX_RES) t->nres = 0;
        for (int i = 0; i < t->nres; i++) t->res[i].name[TR__RES_NAME_LEN - 1] = '\0';
    }
    return TR_OK;
}

void tr__sched_destroy(tr__sched_t *s)
{
    free(s->totals); free(s->load); free(s->dead);
    s->totals = NULL; s->load = NULL; s->dead = NULL;
}

void tr__sched_rank_dead(tr__sched_t *s, int rank)
{
    if (!s->dead[rank]) s->ndead++;
    s->dead[rank] = 1;
    s->load[rank] = 0;
}

int tr__sched_pick(tr__sched_t *s, const tr__req_t *need, const char *task_name)
{
    int best = -1, best_load = 0;
    const char *why = "cpus";
    /* hybrid, like Ray's default: keep work on the owner's own rank while it
     * is less than half busy (no message at all), then spread by load */
    const tr__req_t *me = &s->totals[s->self];
    if (s->load[s->self] * 2 < (me->cpus > 1 ? me->cpus : 1) && tr__req_fits(me, need, &why)) return s->self;
    for (int i = 1; i <= s->size; i++) {
        int r = (s->cursor + i) % s->size;
        const char *w;
        if (s->dead[r]) continue;
        if (!tr__req_fits(&s->totals[r], need, &w)) { why = w; continue; }
        if (best < 0 || s->load[r] < best_load) { best = r; best_load = s->load[r]; }
    }
    if (best < 0) {
        double want = strcmp(why, "cpus") == 0 ? need->cpus : tr__req_get(need, why);
        tr__set_error("task '%s' needs %s=%g but no %srank of the job has that much",
                      task_name, why, want, s->ndead ? "live " : "");
        return -1;
    }
    s->cursor = best;
    return best;
}
