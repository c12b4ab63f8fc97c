/**
 * What the command line prints is partly the server's: method names,
 * descriptions, error texts, events, versions. A hostile server must not
 * drive the user's terminal with them (ESC sequences that clear it or set
 * its title, BEL, C1 controls such as U+009B, which some terminals take for
 * ESC [) nor reorder what is shown (bidirectional overrides). One function
 * makes such text visible instead: `\x1b`, `\u202e`.
 *
 * - `text`: a server string inside human output; every control character
 *   is escaped, newlines too (a server may not forge lines).
 * - `lines`: a whole line of output on its way to the terminal; the same,
 *   but newlines stay (human output is several lines).
 * - `json`: JSON text. JSON.stringify already escapes C0 controls; C1
 *   controls, DEL and the format characters above are escaped as `\uXXXX`
 *   (they can only stand inside strings, so the JSON keeps its value).
 */

/** C0 controls, DEL, C1 controls; ALM, LRM, RLM; the bidi embeddings, overrides and isolates; the line and paragraph separators. */
const TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const LINES = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const JSON_TEXT = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, '0');

export function escapeControls(text: string, style: 'text' | 'lines' | 'json' = 'text'): string {
  if (style === 'json') return text.replace(JSON_TEXT, (c) => `\\u${hex(c, 4)}`);
  return text.replace(style === 'text' ? TEXT : LINES, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}
