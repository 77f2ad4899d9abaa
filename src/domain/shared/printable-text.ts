/**
 * Text without control characters (C0 and DEL). No name or filter a person means has one;
 * PostgreSQL text cannot hold NUL, a terminal or log viewer obeys the others, and JSON writes
 * each of them as six bytes (`\u0001`), which is what let a name outgrow a page cursor.
 */
export const printable = /^[^\u0000-\u001f\u007f]*$/;

/** What a validation failure says of text that is not `printable`. */
export const notPrintable = 'must not contain control characters';
