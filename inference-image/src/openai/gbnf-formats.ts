/**
 * GBNF for the inside of a JSON string of the `format`s OpenAI's strict mode lists beyond
 * the ones node-llama-cpp writes itself (date-time, date, time). Each accepts a subset of
 * what the format allows (ajv-formats' definitions are the test): a grammar needs only
 * ever write valid values, not every one. Pure.
 */

const LABEL = `[a-z0-9] ([a-z0-9-]{0,20} [a-z0-9])?`;
const OCTET = `("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])`;
const HEX = "[0-9a-f]";
const DURATION_DATE = `[0-9]{1,4} "Y" ([0-9]{1,2} "M")? ([0-9]{1,3} "D")? | [0-9]{1,2} "M" ([0-9]{1,3} "D")? | [0-9]{1,3} "D"`;
const DURATION_TIME = `[0-9]{1,2} "H" ([0-9]{1,2} "M")? ([0-9]{1,2} "S")? | [0-9]{1,2} "M" ([0-9]{1,2} "S")? | [0-9]{1,2} "S"`;

export const FORMAT_GRAMMARS: Readonly<Record<string, string>> = {
  // Lower case, as ajv-formats' (case-insensitive) definitions accept.
  email: `[a-z0-9_+-]{1,32} ("." [a-z0-9_+-]{1,16}){0,2} "@" ${LABEL} ("." ${LABEL}){0,2} "." [a-z]{2,6}`,
  hostname: `${LABEL} ("." ${LABEL}){0,3}`,
  ipv4: `${OCTET} "." ${OCTET} "." ${OCTET} "." ${OCTET}`,
  ipv6: `${HEX}{1,4} (":" ${HEX}{1,4}){7}`,
  uuid: `${HEX}{8} "-" ${HEX}{4} "-" ${HEX}{4} "-" ${HEX}{4} "-" ${HEX}{12}`,
  duration: `"P" ((${DURATION_DATE}) ("T" (${DURATION_TIME}))? | "T" (${DURATION_TIME}) | [0-9]{1,3} "W")`
};

/** The formats node-llama-cpp's own JSON-schema grammar writes. */
export const NATIVE_FORMATS: ReadonlySet<string> = new Set(["date-time", "date", "time"]);
