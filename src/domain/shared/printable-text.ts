/**
 * Text without control characters (C0, DEL and C1) or bidirectional overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069). No name or filter a person means has one; PostgreSQL text
 * cannot hold NUL, a terminal or log viewer obeys the others (C1 holds CSI, U+009B, as good as
 * ESC [), a renderer shows text after a bidi override backwards, so what is read is not what was
 * written; and JSON writes each C0 as six bytes (`\u0001`), which is what let a name outgrow a
 * page cursor. The marks U+200E, U+200F and U+061C stay allowed: right-to-left text needs them,
 * and each stops at the next character.
 */
export const printable = /^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$/;

/**
 * `printable`, but for text of several lines (a description, a comment): tab and line feed
 * are allowed, and carriage return before a line feed (text pasted from Windows). A carriage
 * return alone is not: it sends a terminal back to overwrite the line.
 */
export const printableLines = /^(?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|\r\n)*$/;

/** What a validation failure says of text that is not `printable` or `printableLines`. */
export const notPrintable = 'must not contain control characters';
