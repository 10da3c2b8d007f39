/**
 * The command-line parser of `main.ts`: the part of `node:util` `parseArgs`
 * the CLI uses (strict mode, positionals allowed, tokens; string and boolean
 * options, short names, `multiple`), with the same tokens, values and error
 * messages. Importing `node:util` itself makes Deno start its Node.js
 * compatibility layer, which costs a boot about 5 MiB of resident memory of
 * its 60 MiB budget (issue 9; docs/benchmarks.md) for one function.
 *
 * The rules, as Node's: `--` ends the options; `--name=value` and `-nVALUE`
 * attach a value; otherwise a string option takes the next argument, which
 * must not look like an option (`-x`: ambiguous, attach it with `=`); `-abc`
 * is `-a -b -c`, where a string option takes the rest of the group or the
 * next argument; every other argument is a positional.
 *
 * @module
 */

/** How one option is written and what it holds. */
export interface OptionSpec {
  /** A string option takes a value; a boolean one is a switch. */
  readonly type: "string" | "boolean";
  /** A one-character alias used with a single dash. */
  readonly short?: string;
  /** Whether it may be given more than once (its value is then an array). */
  readonly multiple?: boolean;
}

/** The value {@linkcode parseArgs} gives an option of spec `S`. */
type ValueOf<S extends OptionSpec> = S["type"] extends "string"
  ? (S["multiple"] extends true ? string[] : string)
  : (S["multiple"] extends true ? boolean[] : boolean);

/** One element of the command line, as parsed. */
export type ArgToken =
  | {
    readonly kind: "option";
    /** The long name (the short one when no option has it). */
    readonly name: string;
    /** As written: `--name` or `-n`. */
    readonly rawName: string;
    /** Position in the arguments. */
    readonly index: number;
    /** The value, if one was given. */
    readonly value: string | undefined;
    /** Whether the value was attached (`--name=value`, `-nVALUE`). */
    readonly inlineValue: boolean | undefined;
  }
  | { readonly kind: "positional"; readonly index: number; readonly value: string }
  | { readonly kind: "option-terminator"; readonly index: number };

/** What {@linkcode parseArgs} parses, written as for `node:util` `parseArgs`. */
export interface ParseArgsConfig<O extends Readonly<Record<string, OptionSpec>>> {
  /** The command line, without the program. */
  readonly args: readonly string[];
  /** Node's modes this parser always has: strict, positionals allowed, tokens returned. */
  readonly strict?: true;
  readonly allowPositionals?: true;
  readonly tokens?: true;
  /** The options, by long name. */
  readonly options: O;
}

/** What {@linkcode parseArgs} returns. */
export interface ParsedArgs<O extends Readonly<Record<string, OptionSpec>>> {
  /** Each option given, by long name. */
  readonly values: { [K in keyof O]?: ValueOf<O[K]> };
  /** The arguments that are not options or their values. */
  readonly positionals: string[];
  /** Every element of the command line, in order. */
  readonly tokens: ArgToken[];
}

/**
 * Parses `args` against `options` as `node:util` `parseArgs` does with
 * `strict: true, allowPositionals: true, tokens: true`. Throws a TypeError
 * with Node's message for an unknown option, a string option without a
 * value, a boolean one with a value, or a value that looks like an option.
 */
export function parseArgs<const O extends Readonly<Record<string, OptionSpec>>>(
  config: ParseArgsConfig<O>,
): ParsedArgs<O> {
  const options: Readonly<Record<string, OptionSpec>> = config.options;
  const tokens = argsToTokens(config.args, options);
  const values: Record<string, string | boolean | (string | boolean)[]> = Object.create(null);
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positionals.push(token.value);
    } else if (token.kind === "option") {
      checkOption(token, options);
      const value = token.value ?? true;
      if (options[token.name].multiple === true) {
        const list = values[token.name];
        if (Array.isArray(list)) list.push(value);
        else values[token.name] = [value];
      } else {
        values[token.name] = value;
      }
    }
  }
  return { values: values as ParsedArgs<O>["values"], positionals, tokens };
}

/** The option spec of `name`, if `options` has one of its own. */
function specOf(
  options: Readonly<Record<string, OptionSpec>>,
  name: string,
): OptionSpec | undefined {
  return Object.hasOwn(options, name) ? options[name] : undefined;
}

/** The long name of the option with short name `short`, else `short` itself. */
function longNameOf(options: Readonly<Record<string, OptionSpec>>, short: string): string {
  for (const [name, spec] of Object.entries(options)) if (spec.short === short) return name;
  return short;
}

/** Whether a value is written like an option: a dash and more. */
function looksLikeOption(value: string | undefined): boolean {
  return value !== undefined && value.length > 1 && value[0] === "-";
}

function argsToTokens(
  args: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
): ArgToken[] {
  const tokens: ArgToken[] = [];
  const remaining = [...args];
  let index = -1;
  // Arguments a short option group expanded into share the group's index.
  let groupCount = 0;
  while (remaining.length > 0) {
    const arg = remaining.shift() as string;
    const next = remaining[0];
    if (groupCount > 0) groupCount--;
    else index++;
    if (arg === "--") {
      tokens.push({ kind: "option-terminator", index });
      for (const value of remaining) tokens.push({ kind: "positional", index: ++index, value });
      break;
    }
    const isShort = arg.length >= 2 && arg[0] === "-" && arg[1] !== "-";
    if (isShort && arg.length === 2) {
      // -n, with the next argument as a string option's value.
      const name = longNameOf(options, arg[1]);
      const takesValue = specOf(options, name)?.type === "string" && next !== undefined;
      const value = takesValue ? remaining.shift() : undefined;
      tokens.push({
        kind: "option",
        name,
        rawName: arg,
        index,
        value,
        inlineValue: takesValue ? false : undefined,
      });
      if (takesValue) index++;
      continue;
    }
    if (isShort) {
      const name = longNameOf(options, arg[1]);
      if (specOf(options, name)?.type === "string") {
        // -nVALUE
        tokens.push({
          kind: "option",
          name,
          rawName: `-${arg[1]}`,
          index,
          value: arg.slice(2),
          inlineValue: true,
        });
        continue;
      }
      // -abc: -a -b -c, up to a string option, which takes the rest.
      const expanded: string[] = [];
      for (let at = 1; at < arg.length; at++) {
        const short = arg[at];
        if (
          specOf(options, longNameOf(options, short))?.type !== "string" || at === arg.length - 1
        ) {
          expanded.push(`-${short}`);
        } else {
          expanded.push(`-${arg.slice(at)}`);
          break;
        }
      }
      remaining.unshift(...expanded);
      groupCount = expanded.length;
      continue;
    }
    if (arg.length > 2 && arg.startsWith("--")) {
      const equals = arg.indexOf("=", 3);
      if (equals >= 0) {
        // --name=value
        const name = arg.slice(2, equals);
        tokens.push({
          kind: "option",
          name,
          rawName: `--${name}`,
          index,
          value: arg.slice(equals + 1),
          inlineValue: true,
        });
        continue;
      }
      // --name, with the next argument as a string option's value.
      const name = arg.slice(2);
      const takesValue = specOf(options, name)?.type === "string" && next !== undefined;
      const value = takesValue ? remaining.shift() : undefined;
      tokens.push({
        kind: "option",
        name,
        rawName: arg,
        index,
        value,
        inlineValue: takesValue ? false : undefined,
      });
      if (takesValue) index++;
      continue;
    }
    tokens.push({ kind: "positional", index, value: arg });
  }
  return tokens;
}

/** Throws, with Node's message, if an option token is not allowed as written. */
function checkOption(
  token: Extract<ArgToken, { kind: "option" }>,
  options: Readonly<Record<string, OptionSpec>>,
): void {
  const spec = specOf(options, token.name);
  if (spec === undefined) {
    throw new TypeError(
      `Unknown option '${token.rawName}'. To specify a positional argument starting with a ` +
        `'-', place it at the end of the command after '--', as in '-- ${
          JSON.stringify(token.rawName)
        }`,
    );
  }
  const shortAndLong = `${spec.short === undefined ? "" : `-${spec.short}, `}--${token.name}`;
  if (spec.type === "string" && token.value === undefined) {
    throw new TypeError(`Option '${shortAndLong} <value>' argument missing`);
  }
  if (spec.type === "boolean" && token.value !== undefined) {
    throw new TypeError(`Option '${shortAndLong}' does not take an argument`);
  }
  if (token.inlineValue !== true && looksLikeOption(token.value)) {
    const example = token.rawName.startsWith("--")
      ? `'${token.rawName}=-XYZ'`
      : `'--${token.name}=-XYZ' or '${token.rawName}-XYZ'`;
    throw new TypeError(
      `Option '${token.rawName}' argument is ambiguous.\n` +
        `Did you forget to specify the option argument for '${token.rawName}'?\n` +
        `To specify an option argument starting with a dash use ${example}.`,
    );
  }
}
