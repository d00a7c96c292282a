/** Messages for options.verbose (stderr; never on the fast paths). */
import { ctx } from "./context.ts";

export function message(level: number, text: string): void {
  if (ctx.options.verbose >= level) console.error("tsmalloc: " + text);
}
