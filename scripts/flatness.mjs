// The soak's verdict on its samples (scripts/soak.mjs; reasoned in doc/WORKERS.md, "Tests and
// soak"), apart so test/soak-flatness.test.ts can check it on recorded and synthetic series.
const MiB = 1024 * 1024;

/** The median of xs (NaN when empty). */
export function median(xs) {
  const a = [...xs].sort((x, y) => x - y);
  return a.length === 0 ? NaN : a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}

/**
 * samples: [{ min, [key]: bytes }] in time order; keys: the metrics judged. The first
 * max(1, 20%) samples are warm-up and at least 6 must follow. For each key, over the samples
 * after warm-up, with L their median and slack = L * tol + 8 MiB:
 *   no trend: Theil-Sen slope (median of all pairwise slopes) times the span <= slack;
 *   no step:  median of the last third <= median of the first third + slack;
 *   no burst: every sample <= 1.5 * the warm-up maximum + 8 MiB.
 * Returns { fails: string[], detail: string[], warm }.
 */
export function flatness(samples, keys, tol) {
  const fails = [], detail = [];
  const f1 = (b) => (b / MiB).toFixed(1);
  const warm = Math.max(1, Math.floor(samples.length * 0.2));
  const after = samples.slice(warm);
  if (after.length < 6) {
    fails.push(`only ${after.length} samples after warm-up (6 needed): run longer or sample more often`);
    return { fails, detail, warm };
  }
  for (const key of keys) {
    const w = Math.max(...samples.slice(0, warm).map((s) => s[key]));
    const ys = after.map((s) => s[key]), ts = after.map((s) => s.min);
    const level = median(ys);
    const slopes = [];
    for (let i = 0; i < ys.length; i++) for (let j = i + 1; j < ys.length; j++) slopes.push((ys[j] - ys[i]) / (ts[j] - ts[i]));
    const growth = median(slopes) * (ts[ts.length - 1] - ts[0]);
    const third = Math.floor(ys.length / 3);
    const first = median(ys.slice(0, third)), last = median(ys.slice(-third));
    const slack = level * tol + 8 * MiB;
    const max = Math.max(...ys), bound = w * 1.5 + 8 * MiB;
    detail.push(`${key} level ${f1(level)} MiB, trend ${growth >= 0 ? "+" : ""}${f1(growth)} over the run (limit +${f1(slack)}), ` +
      `thirds ${f1(first)} -> ${f1(last)} (limit ${f1(first + slack)}), max ${f1(max)} (limit ${f1(bound)}, 1.5x warm-up)`);
    if (growth > slack) fails.push(`${key} trends up: +${f1(growth)} MiB over the run (level ${f1(level)})`);
    if (last > first + slack) fails.push(`${key} stepped up: median ${f1(first)} -> ${f1(last)} MiB (first third -> last third after warm-up)`);
    if (max > bound) fails.push(`${key} burst: ${f1(max)} MiB, over 1.5x the warm-up's ${f1(w)}`);
  }
  return { fails, detail, warm };
}
