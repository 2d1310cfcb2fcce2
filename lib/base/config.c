/*
 * The configuration in force (tr_config_list(), taskray-info): every
 * TASKRAY_* variable read and every value derived at start-up, with where it
 * came from.  Filled during tr_init() (and by late tr__env_i64() readers),
 * cleared at tr_finalize(); a mutex makes concurrent readers safe.
 */
#include "base/base.h"

#include <pthread.h>
#include <stdio.h>

typedef struct cfg_entry {
    char       *name;
    const char *source;   /* static storage */
    char        value[128];
} cfg_entry_t;

static pthread_mutex_t cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static cfg_entry_t    *cfg_tab;
static int             cfg_n, cfg_cap;

static cfg_entry_t *find_or_add_locked(const char *name)
{
    for (int i = 0; i < cfg_n; i++)
        if (strcmp(cfg_tab[i].name, name) == 0) return &cfg_tab[i];
    if (cfg_n == cfg_cap) {
        int cap = cfg_cap ? cfg_cap * 2 : 32;
        cfg_entry_t *t = realloc(cfg_tab, sizeof(*t) * (size_t)cap);
        if (t == NULL) return NULL;
        cfg_tab = t;
        cfg_cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL) return NULL;
    cfg_entry_t *e = &cfg_tab[cfg_n++];
    e->name = copy;
    return e;
}

void tr__config_set(const char *name, const char *source, const char *fmt, ...)
{
    char value[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&cfg_mu);
    cfg_entry_t *e = find_or_add_locked(name);
    if (e != NULL) {   /* out of memory: the list misses one line, nothing worse */
        e->source = source;
        memcpy(e->value, value, sizeof(value));
    }
    pthread_mutex_unlock(&cfg_mu);
}

int tr__config_copy(tr_config_item_t *items, int max)
{
    pthread_mutex_lock(&cfg_mu);
    int n = cfg_n;
    for (int i = 0; i < n && i < max; i++) {
        items[i].name = cfg_tab[i].name;
        items[i].source = cfg_tab[i].source;
        memcpy(items[i].value, cfg_tab[i].value, sizeof(items[i].value));
    }
    pthread_mutex_unlock(&cfg_mu);
    return n;
}

void tr__config_clear(void)
{
    pthread_mutex_lock(&cfg_mu);
    for (int i = 0; i < cfg_n; i++) free(cfg_tab[i].name);
    free(cfg_tab);
    cfg_tab = NULL;
    cfg_n = cfg_cap = 0;
    pthread_mutex_unlock(&cfg_mu);
}

void tr__config_env_str(const char *name)
{
    const char *v = getenv(name);
    if (v != NULL && *v != '\0') tr__config_set(name, "environment", "%s", v);
}

const char *tr__config_source(const char *name)
{
    const char *src = NULL;
    pthread_mutex_lock(&cfg_mu);
    for (int i = 0; i < cfg_n && src == NULL; i++)
        if (strcmp(cfg_tab[i].name, name) == 0) src = cfg_tab[i].source;
    pthread_mutex_unlock(&cfg_mu);
    return src;
}
