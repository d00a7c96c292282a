/*
 * Native floor for the tsmalloc benchmarks: the same loops as bench/workloads.ts (same
 * xorshift32 tables and seeds, same operation order) in C, against glibc malloc or
 * mimalloc. Built fresh by scripts/bench-all.mjs into bench/native/bin/ (gitignored):
 *   cc -O2 -o bench/native/bin/bench-glibc    bench/native/bench.c
 *   cc -O2 -DUSE_MIMALLOC -o bench/native/bin/bench-mimalloc bench/native/bench.c -lmimalloc
 * The mimalloc build calls mi_* explicitly (no override), the glibc build never links
 * mimalloc, so each binary measures exactly one allocator.
 *
 * Usage: bench-<alloc> speed|memory [quick|full] [frag|rss-return]   -> JSON on stdout
 * Every handle is passed through an empty asm barrier so the compiler cannot pair up and
 * delete a malloc/free (GCC does that for plain malloc+free at -O2).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef USE_MIMALLOC
#include <mimalloc.h>
#define A_MALLOC(n) mi_malloc(n)
#define A_FREE(p) mi_free(p)
#define A_CALLOC(c, n) mi_calloc(c, n)
#define A_REALLOC(p, n) mi_realloc(p, n)
#define A_ALIGNED(n, a) mi_malloc_aligned(n, a)
#define A_COLLECT() (mi_collect(true), "mi_collect(true)")
#define A_NAME "mimalloc"
#else
#define A_MALLOC(n) malloc(n)
#define A_FREE(p) free(p)
#define A_CALLOC(c, n) calloc(c, n)
#define A_REALLOC(p, n) realloc(p, n)
#define A_ALIGNED(n, a) aligned_alloc(a, n)
#define A_COLLECT() (malloc_trim(0), "malloc_trim(0)")
#define A_NAME "glibc"
#endif

#define TABLE 65536
#define SEED_SIZES 0x9e3779b9u
#define SEED_INDEX 0x85ebca6bu
#define SEED_LARSON 4141u
#define SEED_STRESS 0x7feb352du
#define SEED_ORDER 0xc2b2ae35u
/* the extra allocation patterns (issue 15), as in bench/workloads.ts */
#define BATCH_BLOCKS 10000
#define QUEUE_BLOCKS 10000
#define GROW_BLOCKS 100000

static inline void escape(void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef struct { uint32_t x; } rng_t;
static inline uint32_t xs32(rng_t *r) {
  uint32_t x = r->x;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return r->x = x;
}
static rng_t rng(uint32_t seed) { rng_t r = {seed ? seed : 1}; return r; }

static void size_table(uint32_t *t, uint32_t seed, uint32_t lo, uint32_t hi) {
  rng_t r = rng(seed);
  for (int i = 0; i < TABLE; i++) t[i] = lo + xs32(&r) % (hi - lo + 1);
}
static void index_table(uint32_t *t, uint32_t seed, uint32_t n) {
  rng_t r = rng(seed);
  for (int i = 0; i < TABLE; i++) t[i] = xs32(&r) % n;
}
static void random_table(uint32_t *t, uint32_t seed) {
  rng_t r = rng(seed);
  for (int i = 0; i < TABLE; i++) t[i] = xs32(&r);
}
/* a random permutation of 0..n-1 (Fisher-Yates from the top, j = r() % (i + 1)) */
static void permutation(uint32_t *t, uint32_t seed, uint32_t n) {
  rng_t r = rng(seed);
  for (uint32_t i = 0; i < n; i++) t[i] = i;
  for (uint32_t i = n - 1; i > 0; i--) {
    uint32_t j = xs32(&r) % (i + 1);
    uint32_t x = t[i];
    t[i] = t[j];
    t[j] = x;
  }
}
static uint32_t table_sum_n(const uint32_t *t, long n) {
  uint32_t s = 0;
  for (long i = 0; i < n; i++) s = s * 31u + t[i];
  return s;
}
static uint32_t table_sum(const uint32_t *t) { return table_sum_n(t, TABLE); }

static long fails = 0;
static void *ring[64];

/* ------------------------------------------------------------------ loops */

static void pairs(long reps, size_t n) {
  for (long i = 0; i < reps; i++) {
    void *h = A_MALLOC(n);
    if (!h) fails++;
    ring[i & 63] = h;
    escape(h);
    A_FREE(h);
  }
}

typedef struct {
  void **slots;
  uint32_t *sizes, *idx;
  uint32_t k;
  long live;
} churn_t;

static void churn(churn_t *S, long reps) {
  void **slots = S->slots;
  uint32_t k = S->k;
  for (long i = 0; i < reps; i++) {
    uint32_t j = S->idx[k];
    A_FREE(slots[j]);
    void *h = A_MALLOC(S->sizes[k]);
    if (!h) fails++;
    escape(h);
    slots[j] = h;
    k = (k + 1) & 65535;
  }
  S->k = k;
}

static void realloc_chain(long reps) {
  for (long i = 0; i < reps; i++) {
    void *h = A_MALLOC(16);
    for (size_t s = 32; s <= 65536; s *= 2) h = A_REALLOC(h, s);
    if (!h) fails++;
    escape(h);
    A_FREE(h);
  }
}

static void aligned(long reps, size_t n, size_t a) {
  for (long i = 0; i < reps; i++) {
    void *h = A_ALIGNED(n, a);
    if (!h) fails++;
    escape(h);
    A_FREE(h);
  }
}

static void callocs(long reps, size_t c, size_t n) {
  for (long i = 0; i < reps; i++) {
    void *h = A_CALLOC(c, n);
    if (!h) fails++;
    escape(h);
    A_FREE(h);
  }
}

static void glibc_simple(long reps) {
  static void *arr[1600];
  static const size_t sizes[3] = {16, 32, 64};
  static const int counts[4] = {25, 100, 400, 1600};
  for (long r = 0; r < reps; r++)
    for (int si = 0; si < 3; si++)
      for (int ci = 0; ci < 4; ci++) {
        int n = counts[ci], half = n >> 1;
        for (int round = 1600 / n; round > 0; round--) {
          for (int i = 0; i < n; i++) {
            void *h = A_MALLOC(sizes[si]);
            if (!h) fails++;
            escape(h);
            arr[i] = h;
          }
          for (int i = 0; i < half; i++) A_FREE(arr[i]);
          for (int i = n - 1; i >= half; i--) A_FREE(arr[i]);
        }
      }
}

/* batch-fifo, batch-lifo, grow-shrink: the live set ramps 0 -> n (malloc into slots 0..n-1)
   -> 0 (free slot order[0], order[1], ...), over and over; a rep is two steps of the cycle
   (one malloc and one free), the phase and position carry across calls. */
typedef struct {
  void **slots;
  uint32_t *sizes, *order;
  uint32_t n, k, top, pos;
  int grow;
} ramp_t;

static void ramp(ramp_t *S, long reps) {
  void **slots = S->slots;
  const uint32_t *sizes = S->sizes, *order = S->order;
  uint32_t n = S->n, k = S->k, top = S->top, pos = S->pos;
  int grow = S->grow;
  long steps = 2 * reps;
  while (steps > 0) {
    if (grow) {
      uint32_t end = steps < (long)(n - top) ? top + (uint32_t)steps : n;
      steps -= end - top;
      for (; top < end; top++) {
        void *h = A_MALLOC(sizes[k]);
        if (!h) fails++;
        escape(h);
        slots[top] = h;
        k = (k + 1) & 65535;
      }
      if (top == n) {
        grow = 0;
        pos = 0;
      }
    } else {
      uint32_t end = steps < (long)(n - pos) ? pos + (uint32_t)steps : n;
      steps -= end - pos;
      for (; pos < end; pos++) {
        uint32_t j = order[pos];
        A_FREE(slots[j]);
        slots[j] = NULL;
      }
      if (pos == n) {
        grow = 1;
        top = 0;
      }
    }
  }
  S->k = k;
  S->top = top;
  S->pos = pos;
  S->grow = grow;
}

/* queue: a FIFO ring of n live blocks; op = malloc at the tail, free the oldest */
typedef struct {
  void **slots;
  uint32_t *sizes;
  uint32_t n, k, head;
} queue_t;

static void queue(queue_t *S, long reps) {
  void **ring = S->slots;
  const uint32_t *sizes = S->sizes;
  uint32_t n = S->n, k = S->k, head = S->head;
  for (long i = 0; i < reps; i++) {
    void *h = A_MALLOC(sizes[k]);
    if (!h) fails++;
    escape(h);
    void *old = ring[head];
    ring[head] = h;
    A_FREE(old);
    if (++head == n) head = 0;
    k = (k + 1) & 65535;
  }
  S->k = k;
  S->head = head;
}

#define STRESS_SCALE 50
typedef struct {
  uint32_t rnd[TABLE];
  void **data, **retained, *transfer[1000];
  size_t size_tab[28];
  long allocs;
  uint32_t k;
} stress_t;

static void mstress(stress_t *S, long reps) {
  const uint32_t *rnd = S->rnd;
  uint32_t k = S->k;
  for (long r = 0; r < reps; r++) {
    long allocs = S->allocs, retain = S->allocs >> 1, dtop = 0, rtop = 0;
    while (allocs > 0 || retain > 0) {
      int to_data, e;
      if (retain == 0 || ((rnd[k++ & 65535] % 100) <= 50 && allocs > 0)) {
        e = rnd[k++ & 65535] % 5;
        allocs--;
        to_data = 1;
      } else {
        e = rnd[k++ & 65535] % 7;
        retain--;
        to_data = 0;
      }
      int sc = 0;
      if ((rnd[k++ & 65535] % 100) <= 1) {
        if ((rnd[k++ & 65535] % 100) <= 1) sc = 3;
        else if ((rnd[k++ & 65535] % 100) <= 10) sc = 2;
        else sc = 1;
      }
      void *h = A_MALLOC(S->size_tab[e * 4 + sc]);
      if (!h) fails++;
      escape(h);
      if (to_data) S->data[dtop++] = h;
      else S->retained[rtop++] = h;
      if ((rnd[k++ & 65535] % 100) <= 66 && dtop > 0) {
        uint32_t j = rnd[k++ & 65535] % dtop;
        if (S->data[j]) A_FREE(S->data[j]);
        S->data[j] = NULL;
      }
      if ((rnd[k++ & 65535] % 100) <= 25 && dtop > 0) {
        uint32_t j = rnd[k++ & 65535] % dtop;
        uint32_t t = rnd[k++ & 65535] % 1000;
        void *o = S->data[j];
        S->data[j] = S->transfer[t];
        S->transfer[t] = o;
      }
    }
    for (long i = 0; i < dtop; i++) {
      if (S->data[i]) A_FREE(S->data[i]);
      S->data[i] = NULL;
    }
    for (long i = 0; i < rtop; i++) {
      if (S->retained[i]) A_FREE(S->retained[i]);
      S->retained[i] = NULL;
    }
  }
  S->k = k & 0x3fffffff;
}

/* ------------------------------------------------------------------ driver */

typedef void (*loop_fn)(void *ctx, long reps);
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double budget_ns;
static int first_out = 1;

/* calibrate like the JS side (one call ~1 ms), then time calls until the budget is spent */
static void measure(const char *id, loop_fn fn, void *ctx, long ops_per_rep) {
  long reps = 1;
  for (;;) {
    double t0 = now_ns();
    fn(ctx, reps);
    double dt = now_ns() - t0;
    if (dt >= 1e6 || reps >= (1L << 24)) break;
    reps *= 4;
  }
  double best = 1e300;
  for (int i = 0; i < 2; i++) {
    double t0 = now_ns();
    fn(ctx, reps);
    double per = (now_ns() - t0) / reps;
    if (per < best) best = per;
  }
  reps = (long)(1e6 / (best > 1e-3 ? best : 1e-3) + 0.5);
  if (reps < 1) reps = 1;
  static double samples[1 << 16];
  double total = 0, min = 1e300, cpu = 0;
  long calls = 0;
  while ((total < budget_ns || calls < 12) && calls < (1 << 16)) {
    double c0 = cpu_ns(), t0 = now_ns();
    fn(ctx, reps);
    double dt = now_ns() - t0;
    cpu += cpu_ns() - c0;
    total += dt;
    if (dt < min) min = dt;
    samples[calls++] = dt;
  }
  qsort(samples, calls, sizeof(double), cmp_double);
  double ops = (double)reps * ops_per_rep;
  printf("%s\n  {\"workload\": \"%s\", \"status\": \"%s\", \"nsPerOp\": %.4f, \"cpuNsPerOp\": %.4f, \"p50NsPerOp\": %.4f, \"minNsPerOp\": %.4f, \"opsPerCall\": %.0f, \"calls\": %ld, \"fail\": %ld}",
         first_out ? "" : ",", id, fails ? "error" : "ok", total / calls / ops, cpu / calls / ops, samples[calls / 2] / ops, min / ops, ops, calls, fails);
  first_out = 0;
  fails = 0;
}

static size_t g_n, g_a;
static void w_pairs(void *c, long r) { (void)c; pairs(r, g_n); }
static void w_churn(void *c, long r) { churn((churn_t *)c, r); }
static void w_realloc(void *c, long r) { (void)c; realloc_chain(r); }
static void w_aligned(void *c, long r) { (void)c; aligned(r, g_n, g_a); }
static void w_calloc(void *c, long r) { (void)c; callocs(r, 1, 4096); }
static void w_glibc(void *c, long r) { (void)c; glibc_simple(r); }
static void w_stress(void *c, long r) { mstress((stress_t *)c, r); }
static void w_ramp(void *c, long r) { ramp((ramp_t *)c, r); }
static void w_queue(void *c, long r) { queue((queue_t *)c, r); }

/* order: 0 = allocation order (FIFO), 1 = reverse (LIFO), 2 = random permutation */
static void run_ramp(const char *id, uint32_t n, int order) {
  ramp_t S = {0};
  S.n = n;
  S.grow = 1;
  S.slots = calloc(n, sizeof(void *));
  S.sizes = malloc(TABLE * 4);
  S.order = malloc(n * sizeof(uint32_t));
  size_table(S.sizes, SEED_SIZES, 8, 4096);
  if (order == 2) permutation(S.order, SEED_ORDER, n);
  else
    for (uint32_t i = 0; i < n; i++) S.order[i] = order == 0 ? i : n - 1 - i;
  ramp(&S, n); /* one whole cycle untimed: the timed calls start from a warm heap */
  measure(id, w_ramp, &S, 1);
  for (uint32_t i = 0; i < n; i++)
    if (S.slots[i]) A_FREE(S.slots[i]);
  free(S.slots);
  free(S.sizes);
  free(S.order);
}

static void run_queue(const char *id, uint32_t n) {
  queue_t S = {0};
  S.n = n;
  S.slots = calloc(n, sizeof(void *));
  S.sizes = malloc(TABLE * 4);
  size_table(S.sizes, SEED_SIZES, 8, 4096);
  for (uint32_t i = 0; i < n; i++) {
    S.slots[i] = A_MALLOC(S.sizes[S.k]);
    if (!S.slots[i]) fails++;
    S.k = (S.k + 1) & 65535;
  }
  measure(id, w_queue, &S, 1);
  for (uint32_t i = 0; i < n; i++) A_FREE(S.slots[i]);
  free(S.slots);
  free(S.sizes);
}

static void run_churn(const char *id, long live, uint32_t lo, uint32_t hi, int larson) {
  churn_t S;
  S.live = live;
  S.k = 0;
  S.slots = calloc(live, sizeof(void *));
  S.sizes = malloc(TABLE * 4);
  S.idx = malloc(TABLE * 4);
  size_table(S.sizes, larson ? SEED_LARSON : SEED_SIZES, lo, hi);
  index_table(S.idx, larson ? SEED_LARSON + 1 : SEED_INDEX, live);
  if (!larson) {
    for (long i = 0; i < live; i++) S.slots[i] = A_MALLOC(S.sizes[(i * 7) & (TABLE - 1)]);
    churn(&S, 4 * live); /* warm-up, untimed (as workloads.ts): the steady state, not the first pass */
  } else {
    rng_t r = rng(SEED_LARSON + 2);
    for (long i = 0; i < live; i++) S.slots[i] = A_MALLOC(lo + xs32(&r) % (hi - lo + 1));
    for (long i = live - 1; i > 0; i--) {
      uint32_t j = xs32(&r) % (i + 1);
      void *t = S.slots[i];
      S.slots[i] = S.slots[j];
      S.slots[j] = t;
    }
    for (long i = 0; i < 4 * live; i++) {
      uint32_t j = xs32(&r) % live;
      A_FREE(S.slots[j]);
      S.slots[j] = A_MALLOC(lo + xs32(&r) % (hi - lo + 1));
    }
  }
  measure(id, w_churn, &S, 1);
  for (long i = 0; i < live; i++) A_FREE(S.slots[i]);
  free(S.slots);
  free(S.sizes);
  free(S.idx);
}

static void speed(int full) {
  budget_ns = full ? 500e6 : 120e6;
  static const size_t quick_pairs[] = {64, 1024, 1 << 20, 8 << 20}, full_pairs[] = {8, 64, 1024, 65536, 1 << 20, 8 << 20};
  const size_t *ps = full ? full_pairs : quick_pairs;
  int np = full ? 6 : 4;
  char id[64];
  for (int i = 0; i < np; i++) {
    g_n = ps[i];
    snprintf(id, sizeof id, "pairs-%zu", g_n);
    measure(id, w_pairs, NULL, 1);
  }
  static const long quick_live[] = {1000, 100000}, full_live[] = {1000, 100000, 1000000};
  const long *ls = full ? full_live : quick_live;
  for (int i = 0; i < (full ? 3 : 2); i++) {
    snprintf(id, sizeof id, "mixed-%ld", ls[i]);
    run_churn(id, ls[i], 8, 4096, 0);
  }
  measure("realloc-chain", w_realloc, NULL, 1);
  g_n = 200, g_a = 64;
  measure("aligned-64", w_aligned, NULL, 1);
  g_n = 4096, g_a = 4096;
  measure("aligned-4096", w_aligned, NULL, 1);
  measure("calloc-4096", w_calloc, NULL, 1);
  run_churn("larson", 5000, 8, 999, 1);
  measure("glibc-simple", w_glibc, NULL, 3 * 4 * 1600);
  stress_t *S = calloc(1, sizeof(stress_t));
  random_table(S->rnd, SEED_STRESS);
  S->allocs = 100 * STRESS_SCALE;
  S->data = calloc(S->allocs, sizeof(void *));
  S->retained = calloc(S->allocs / 2, sizeof(void *));
  static const long mul[4] = {1, 100, 1000, 10000};
  for (int e = 0; e < 7; e++)
    for (int m = 0; m < 4; m++) {
      long n = (1L << e) * mul[m];
      if (n >= 32 && n <= 40) n *= 2;
      S->size_tab[e * 4 + m] = 8 * n;
    }
  measure("mstress", w_stress, S, S->allocs + (S->allocs >> 1));
  for (int i = 0; i < 1000; i++)
    if (S->transfer[i]) A_FREE(S->transfer[i]);
  free(S->data);
  free(S->retained);
  free(S);
  run_ramp("batch-fifo", BATCH_BLOCKS, 0);
  run_ramp("batch-lifo", BATCH_BLOCKS, 1);
  run_queue("queue", QUEUE_BLOCKS);
  run_ramp("grow-shrink", GROW_BLOCKS, 2);
}

/* ------------------------------------------------------------------ memory */

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') v = strtol(line + kl + 1, NULL, 10);
  if (f) fclose(f);
  return v * 1024;
}
static int reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

static void memory(int full, const char *which) {
  if (!strcmp(which, "frag")) {
    long N = full ? 1000000 : 200000;
    void **a = calloc(N, sizeof(void *));
    long base = status_kb("VmRSS");
    reset_peak();
    for (long i = 0; i < N; i++) {
      a[i] = A_MALLOC(64);
      memset(a[i], 0xab, 64);
    }
    long after_fill = status_kb("VmRSS") - base;
    for (long i = 1; i < N; i += 2) {
      A_FREE(a[i]);
      a[i] = NULL;
    }
    for (long i = 1; i < N; i += 2) {
      a[i] = A_MALLOC(128);
      memset(a[i], 0xab, 128);
    }
    double live = (N / 2) * 64.0 + (N / 2) * 128.0;
    long peak = status_kb("VmHWM") - base, end = status_kb("VmRSS") - base;
    printf("{\"workload\": \"frag\", \"status\": \"ok\", \"result\": {\"blocks\": %ld, \"liveBytes\": %.0f, \"afterFillBytes\": %ld, \"peakBytes\": %ld, \"endBytes\": %ld, \"peakPerLive\": %.4f, \"endPerLive\": %.4f, \"fail\": 0}}\n",
           N, live, after_fill, peak, end, peak / live, end / live);
    for (long i = 0; i < N; i++) A_FREE(a[i]);
    free(a);
  } else {
    long M = full ? 250000 : 50000;
    uint32_t *sizes = malloc(TABLE * 4);
    size_table(sizes, SEED_SIZES, 8, 4096);
    void **a = calloc(M, sizeof(void *));
    long base = status_kb("VmRSS");
    double bytes = 0;
    for (long i = 0; i < M; i++) {
      size_t n = sizes[i & (TABLE - 1)];
      a[i] = A_MALLOC(n);
      memset(a[i], 0xab, n);
      bytes += n;
    }
    long loaded = status_kb("VmRSS") - base;
    for (long i = 0; i < M; i++) A_FREE(a[i]);
    long after_free = status_kb("VmRSS") - base;
    const char *how = A_COLLECT();
    long after_collect_now = status_kb("VmRSS") - base;
    /* same protocol as bench/memory.ts: 300 ms grace period, give-back call again, measure */
    usleep(300000);
    A_COLLECT();
    long after_collect = status_kb("VmRSS") - base;
    printf("{\"workload\": \"rss-return\", \"status\": \"ok\", \"result\": {\"blocks\": %ld, \"requestedBytes\": %.0f, \"loadedBytes\": %ld, \"afterFreeBytes\": %ld, \"afterCollectNowBytes\": %ld, \"afterCollectBytes\": %ld, \"collect\": \"%s\", \"returnedFraction\": %.4f, \"fail\": 0}}\n",
           M, bytes, loaded, after_free, after_collect_now, after_collect, how, loaded > 0 ? 1.0 - (double)after_collect / loaded : 0.0);
    free(a);
    free(sizes);
  }
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "speed";
  int full = argc > 2 && !strcmp(argv[2], "full");
  if (!strcmp(what, "memory")) {
    memory(full, argc > 3 ? argv[3] : "frag");
    return 0;
  }
  uint32_t *t = malloc(TABLE * 4);
  size_table(t, SEED_SIZES, 8, 4096);
  uint32_t s1 = table_sum(t);
  index_table(t, SEED_INDEX, 1000);
  uint32_t s2 = table_sum(t);
  size_table(t, SEED_LARSON, 8, 999);
  uint32_t s3 = table_sum(t);
  random_table(t, SEED_STRESS);
  uint32_t s4 = table_sum(t);
  free(t);
  uint32_t *perm = malloc(GROW_BLOCKS * sizeof(uint32_t));
  permutation(perm, SEED_ORDER, GROW_BLOCKS);
  uint32_t s5 = table_sum_n(perm, GROW_BLOCKS);
  free(perm);
#ifdef USE_MIMALLOC
  int ver = mi_version();
#else
  int ver = 0;
#endif
  printf("{\"allocator\": \"%s\", \"mode\": \"%s\", \"miVersion\": %d,\n \"tables\": {\"sizes\": %u, \"index1000\": %u, \"larsonSizes\": %u, \"stress\": %u, \"growShrinkOrder\": %u},\n \"results\": [",
         A_NAME, full ? "full" : "quick", ver, s1, s2, s3, s4, s5);
  speed(full);
  printf("\n]}\n");
  return 0;
}
