/**
 * A tagged template that escapes by default: `markup\`<p>${value}</p>\`` escapes `value` unless it is itself markup
 * built by this tag. Arrays are joined, `null`, `undefined` and `false` render nothing. Forgetting to escape is
 * impossible; writing markup from text needs the explicit `unsafeMarkup`, which only constants use.
 */
export class Markup {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type Interpolation = Markup | string | number | boolean | null | undefined | Interpolation[];

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for an HTML element body or a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]!);
}

function render(value: Interpolation): string {
  if (value instanceof Markup) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function markup(strings: TemplateStringsArray, ...values: Interpolation[]): Markup {
  let out = strings[0]!;
  values.forEach((value, i) => (out += render(value) + strings[i + 1]!));
  return new Markup(out);
}

/** Trusted markup from a constant of this codebase (a style sheet); never pass request or record data. */
export function unsafeMarkup(constant: string): Markup {
  return new Markup(constant);
}
