// The soak's flatness rule (scripts/flatness.mjs; doc/WORKERS.md "Tests and soak") on the
// samples of session 9's hour (Node 20, FFI, one per minute, MiB) and on the same series with
// a synthetic leak or step added: the rule must pass the recorded hour, whose level wandered
// with no trend, and fail each leak. (The soak itself is not in CI: it takes an hour.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { flatness } from "../scripts/flatness.mjs";

const t = suite("soak-flatness");
const MiB = 1024 * 1024;

const RSS = [
  181.2, 188.8, 191.0, 194.4, 167.9, 141.9, 184.2, 199.9, 206.0, 239.2, 244.5, 243.6, 248.5, 258.4,
  266.7, 247.0, 253.8, 252.9, 255.9, 247.6, 248.6, 271.9, 270.5, 274.0, 277.8, 282.9, 266.7, 267.5,
  263.2, 260.7, 260.6, 270.1, 269.6, 277.2, 276.5, 257.1, 259.7, 251.2, 249.9, 198.5, 222.7, 226.6,
  224.5, 215.3, 224.4, 244.7, 234.2, 234.6, 231.8, 238.1, 260.8, 254.3, 268.5, 267.1, 266.4, 264.2,
  266.6, 274.6, 277.3, 273.7,
];
const COMMITTED = [
  522.8, 524.3, 507.4, 509.4, 558.8, 344.8, 527.2, 545.2, 545.4, 546.3, 568.4, 548.6, 554.9, 568.8,
  567.3, 570.3, 567.8, 544.9, 572.6, 550.8, 562.8, 568.3, 568.3, 559.7, 565.8, 565.3, 549.2, 553.6,
  561.7, 555.5, 560.5, 560.5, 543.9, 553.1, 551.4, 542.6, 567.0, 555.4, 556.9, 556.1, 556.1, 547.6,
  536.9, 438.4, 558.7, 560.7, 562.0, 527.4, 537.6, 558.9, 566.6, 560.1, 565.2, 560.4, 554.2, 558.7,
  563.1, 569.9, 573.4, 584.2,
];
const RESIDENT = [
  47.4, 55.6, 57.4, 61.5, 69.5, 40.2, 57.6, 66.7, 73.4, 88.3, 92.3, 92.1, 96.8, 106.7, 114.8,
  107.8, 115.0, 113.2, 116.1, 108.0, 110.4, 117.9, 116.9, 120.9, 124.1, 129.6, 126.9, 127.1, 123.7,
  120.6, 121.5, 128.1, 127.1, 122.9, 121.5, 117.3, 113.4, 111.7, 111.0, 77.3, 86.3, 87.4, 85.1,
  74.1, 83.1, 89.5, 93.9, 94.0, 90.5, 96.4, 105.5, 105.2, 111.4, 110.2, 111.2, 109.1, 111.5, 118.1,
  121.1, 116.8,
];

type Sample = { min: number; rss: number; committed: number; resident: number };
/** Samples at t = 1..60 min; `add(minute)` MiB added to resident (a leak or a step). */
function hour(add: (min: number) => number = () => 0): Sample[] {
  return RESIDENT.map((r, i) => ({ min: i + 1, rss: RSS[i] * MiB, committed: COMMITTED[i] * MiB, resident: (r + add(i + 1)) * MiB }));
}
const judge = (s: Sample[]) => flatness(s, ["rss", "committed", "resident"], 0.10) as { fails: string[]; detail: string[]; warm: number };

t("session 9's hour passes: resident wandered 90-130 MiB with no trend (the old rule, max against the 12-minute warm-up, failed it: 129.6 > 109.6)", () => {
  const v = judge(hour());
  assert.equal(v.fails, [], v.detail.join("\n"));
  assert.is(v.warm, 12);
  const oldLimit = Math.max(...RESIDENT.slice(0, 12)) * 1.1 + 8;
  assert.ok(Math.max(...RESIDENT.slice(12)) > oldLimit, "the old rule's verdict on the same data was FAIL");
});

t("a leak of 60 MiB an hour in resident fails as a trend and a step, whatever the noise around it", () => {
  const v = judge(hour((m) => m));
  assert.ok(v.fails.some((f) => /^resident trends up/.test(f)), v.fails.join("; "));
  assert.ok(v.fails.some((f) => /^resident stepped up/.test(f)), v.fails.join("; "));
  assert.not.ok(v.fails.some((f) => /^(rss|committed)/.test(f)), `only resident was changed: ${v.fails.join("; ")}`);
});

t("a leak that starts only at minute 40 (2 MiB a minute) fails as a trend", () => {
  const v = judge(hour((m) => (m > 40 ? (m - 40) * 2 : 0)));
  assert.ok(v.fails.some((f) => /^resident trends up/.test(f)), v.fails.join("; "));
});

t("a step of 40 MiB at minute 45 fails as a step", () => {
  const v = judge(hour((m) => (m >= 45 ? 40 : 0)));
  assert.ok(v.fails.some((f) => /^resident stepped up/.test(f)), v.fails.join("; "));
});

t("a burst past 1.5x the warm-up maximum fails even without a trend", () => {
  const v = judge(hour((m) => (m === 30 ? 100 : 0)));
  assert.equal(v.fails.map((f) => f.split(":")[0]), ["resident burst"]);
});

t("the rule's resolution: a leak of 30 MiB an hour on this noise passes (a trend of about +16 of a +21 MiB allowance over the 48 minutes judged); doc/WORKERS.md says so", () => {
  const v = judge(hour((m) => m * 0.5));
  assert.equal(v.fails, [], "documented as below the rule's resolution");
});

t("fewer than 6 samples after warm-up is a failure, never a pass", () => {
  const v = judge(hour().slice(0, 6));
  assert.ok(v.fails.length === 1 && /only 5 samples/.test(v.fails[0]), v.fails.join("; "));
});

t.run();
