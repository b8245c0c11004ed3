/**
 * The exit codes each command really uses, in one table: `--help` prints a command's rows as its EXIT CODES section
 * (src/cli/help.ts), and the tests hold the commands to them (test/cli/bad-input.test.ts, test/cli/help.test.ts).
 *
 * Where they come from: a KubeferryError carries its exit code (default 1); usage errors — what the command-line
 * parser refuses, an unknown command — are 2 (src/cli/usage.ts); `load` uses install.sh's codes (EXIT in
 * src/bundle/import-plan.ts); `create` exits 130 when interrupted; resolve, verify and push set 1 themselves for a
 * partial failure they report.
 */
import {EXIT as LOAD_EXIT} from '../bundle/import-plan.js'
import {USAGE_EXIT} from './usage.js'

export interface ExitCode {
  code: number
  meaning: string
}

const USAGE: ExitCode = {
  code: USAGE_EXIT,
  meaning: 'Usage error: an unknown command or flag, a missing argument or required flag, or a flag value of the wrong type or not among its choices. Nothing was done.',
}

/** A failure that names itself on stderr (`error:` + `hint:`, or the --json error document). */
const failed = (what: string): ExitCode => ({code: 1, meaning: what})

export const EXIT_CODES: Readonly<Record<string, readonly ExitCode[]>> = {
  config: [
    {code: 0, meaning: 'The files were printed (or written under --output).'},
    failed('Failed: a value that is not valid (registry, --containerd-version, …), a bundle, CA or password file that cannot be read, or an output directory that cannot be written.'),
    USAGE,
  ],
  create: [
    {code: 0, meaning: 'The bundle, its .sha256 and its install.sh were written.'},
    failed('Failed: no images, an invalid value, a registry or network error, a missing platform, a missing or refused image signature (when required), or an output that cannot be written or will not fit. No bundle was written (downloads stay cached), unless the error says it is complete: then only --with-tool or --sign-key failed.'),
    USAGE,
    {code: 130, meaning: 'Interrupted (SIGINT or SIGTERM). No bundle was written; what was downloaded stays in the cache for the next run.'},
  ],
  diff: [
    {code: 0, meaning: 'The comparison was printed.'},
    failed('Failed: OLD or NEW cannot be read or is neither a bundle, a bundle.json nor a lockfile, or (for a lockfile) a registry or network error while reading its manifests.'),
    USAGE,
  ],
  images: [
    {code: 0, meaning: 'The list was printed (and the lockfile written with --lock).'},
    failed('Failed: nothing to list, a value that is not valid (Kubernetes version, runtime, image reference), an unreadable file or manifest, or (with --digests) a registry or network error.'),
    USAGE,
  ],
  inventory: [
    {code: 0, meaning: 'The inventory was written (or printed).'},
    failed('Failed: a registry or runtime that cannot be read (refused credential, network error, runtime not reachable), a file given with --images-from that cannot be read, or an output that cannot be written.'),
    USAGE,
  ],
  inspect: [
    {code: 0, meaning: 'The contents were printed.'},
    failed('Failed: the bundle cannot be read or does not pass the quick structure check, or (with --key or a node policy in the trusted-keys directory) its signatures do not hold.'),
    USAGE,
  ],
  load: [
    {code: LOAD_EXIT.ok, meaning: 'Every image of this platform is in the runtime with its digest (or, with --dry-run/--verify-only, would be and the bundle checks out).'},
    {code: LOAD_EXIT.failed, meaning: 'An image is missing or has another digest after the import, the runtime refused the import, or a flag value is not valid.'},
    USAGE,
    {code: LOAD_EXIT.noRuntime, meaning: 'No container runtime found or reachable (or not the one given with --runtime).'},
    {code: LOAD_EXIT.badBundle, meaning: 'The bundle is missing, not a file, or fails its checksum or structure check, or (with --key or a node policy) it is unsigned, wrongly signed or not the bundle that was signed, or (with --verify-images) an image has no valid signature its image policy allows (a cosign key, or a keyless identity checked against the trusted root). Nothing was imported.'},
    {code: LOAD_EXIT.noPlatform, meaning: "The bundle does not hold this node's platform (or the one given with --platform)."},
    {code: LOAD_EXIT.noSpace, meaning: 'Not enough free space for the import.'},
    {code: LOAD_EXIT.missingBase, meaning: 'A delta bundle whose base the runtime does not hold (the images missing a layer are named), or a delta made for push only. Nothing was imported.'},
  ],
  push: [
    {code: 0, meaning: 'Every image is in the registry under every name, digests unchanged (with --dry-run: the plan was printed).'},
    failed('Failed: the bundle cannot be read or is damaged, its signatures do not hold (--key, a node policy) or an image signature does not (--verify-images; nothing is sent), the registry refused a credential or a write, a network error, or a tag already points at another digest (without --overwrite). What was pushed stays; a rerun skips it.'),
    USAGE,
  ],
  resolve: [
    {code: 0, meaning: 'Every reference was resolved.'},
    failed('At least one reference failed (invalid, not found, refused, unreachable): each is named on stderr; the others are still printed.'),
    USAGE,
  ],
  sign: [
    {code: 0, meaning: 'The signature was added to NAME.tar.sig.json (or this key had signed already).'},
    failed('Failed: the key cannot be read or decrypted (wrong passphrase), is not ECDSA P-256 or Ed25519, the bundle cannot be read or does not match its .sha256 (or NAME.parts.sha256), the .sig.json beside it signs another bundle, or it cannot be written. Nothing was signed.'),
    USAGE,
  ],
  serve: [
    {code: 0, meaning: 'Stopped by SIGTERM or SIGINT after running downloads finished.'},
    failed('Could not start: a bundle cannot be read, fails verification or its signatures do not hold (with --key or a node policy), an image signature does not (--verify-images) or a key, image policy or trusted root cannot be read, the address is not valid or in use, or the TLS files cannot be read.'),
    USAGE,
  ],
  verify: [
    {code: 0, meaning: 'Every check holds.'},
    failed('The bundle cannot be read, a check failed (every problem is listed on stderr; --json: in the report), or (with --key or a node policy) its signatures do not hold, or (with --images) an image is refused by the image signature policy (each named with its reason; images the policy does not cover are reported as not checked).'),
    USAGE,
  ],
}

/** The rows for a command; a command missing from the table is a bug the help test catches. */
export function exitCodesOf(commandId: string): readonly ExitCode[] | undefined {
  return EXIT_CODES[commandId]
}
