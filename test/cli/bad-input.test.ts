/**
 * Every command walked through its bad inputs (issue 18, item 2): one table, one row per mistake an operator makes.
 * Each row runs the built CLI twice and checks, for the plain run: the exit code (2 for usage errors, otherwise the
 * code the command documents — and that code must be in the command's EXIT CODES table), an `error:` line that
 * NAMES the bad item (the flag, the path, the reference, the version), a `  hint:` line right after it, no stack
 * trace, no "report this as a bug", nothing on stdout; and with --json: the same exit code and an {"error": {...}}
 * document on stdout whose message names the item too.
 *
 * Fixtures are made here: a directory, a truncated copy of a small bundle, a bundle with one byte flipped
 * (fixtures/bundles/flipped-layer.tar), a read-only file system (a tmpfs mounted read-only: chmod does not stop
 * root; rows needing it are skipped with a log where mount is not possible), and the htpasswd registry of the
 * shared peers for a wrong password.
 */
import test, {type ExecutionContext} from 'ava'
import {execFileSync} from 'node:child_process'
import {copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile} from 'node:fs/promises'
import {createServer, type AddressInfo, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {EXIT_CODES} from '../../src/cli/exit-codes.js'
import {needPeers} from '../harness/peers.js'
import {projectRoot, runCli} from '../helpers/cli.js'

interface Fixtures {
  dir: string
  /** A directory, where a file is expected. */
  folder: string
  missing: string
  good: string
  truncated: string
  flipped: string
  /** A directory on a read-only file system; undefined when none could be mounted. */
  readOnly?: string
  /** The htpasswd registry of the shared peers, when they run. */
  htpasswd?: {host: string; username: string}
  /** Nothing listens here: a row that reached the network would fail with another message. */
  deadMirror: string
  /** A port this test holds open, for `serve --listen`. */
  busyPort: number
  /** JSON, but not a Sigstore trusted root. */
  notTrustedRoot: string
  /** A 5 MB (sparse) file, past the size caps of keys, image policies and trusted roots. */
  oversized: string
  /** An image policy whose one entry names a key file that is not there. */
  policyMissingKey: string
}

interface Row {
  /** The command ('' for kubeferry itself). */
  command: string
  problem: string
  argv: (f: Fixtures) => string[]
  code: number
  /** What the `error:` line must match: it names the bad item. */
  error: RegExp | ((f: Fixtures) => RegExp)
  hint?: RegExp
  stdin?: string
  needs?: 'readOnly' | 'htpasswd'
  /** Lines a plain run may print on stdout before it fails (load's progress lines); default: none. */
  stdout?: RegExp
  /** resolve reports each reference: with --json its error is in the entry of that reference. */
  json?: 'error' | 'per-reference'
}

const PAUSE = 'registry.k8s.io/pause:3.10'
const BAD_REF = 'registry.k8s.io/Pause:3.10'
const noNet = (f: Fixtures): string[] => ['--mirror', `registry.k8s.io=${f.deadMirror}`]

const ROWS: Row[] = [
  // kubeferry itself
  {command: '', problem: 'unknown command (typo)', argv: () => ['pussh', 'k8s.tar', 'reg:5000/k8s'], code: 2, error: /^error: unknown command "pussh"/, hint: /did you mean `kubeferry push`/},
  {command: '', problem: 'flag before the command', argv: () => ['--bogus', 'push'], code: 2, error: /^error: unknown flag --bogus/},
  {command: '', problem: 'help for an unknown command', argv: () => ['help', 'pussh'], code: 2, error: /^error: unknown command "pussh"/, hint: /kubeferry push/},
  {command: '', problem: 'the version asked as kubectl does', argv: () => ['version'], code: 2, error: /^error: unknown command "version"/, hint: /^ {2}hint: the version is `kubeferry --version`; commands: /},
  {command: '', problem: 'the version asked as skopeo does', argv: () => ['-v'], code: 2, error: /^error: unknown flag -v before the command/, hint: /^ {2}hint: the version is `kubeferry --version`; flags go after/},

  // config
  {command: 'config', problem: 'missing required flag', argv: () => ['--registry', 'reg:5000/k8s'], code: 2, error: /^error: missing required flag --for\b/},
  {command: 'config', problem: 'neither --registry nor --serve', argv: () => ['--for', 'containerd'], code: 2, error: /^error: missing flag --registry or --serve/},
  {command: 'config', problem: 'unknown flag', argv: () => ['--registry', 'reg:5000/k8s', '--for', 'hosts', '--registy', 'x'], code: 2, error: /^error: unknown flag --registy\b/, hint: /did you mean --registry/},
  {command: 'config', problem: 'value not among the choices', argv: () => ['--registry', 'reg:5000/k8s', '--for', 'containerdd'], code: 2, error: /^error: invalid --for "containerdd"/},
  {command: 'config', problem: 'malformed registry', argv: () => ['--registry', 'Reg:5000/K8S', '--for', 'hosts'], code: 1, error: /^error: invalid registry "Reg:5000\/K8S"/},
  {command: 'config', problem: 'malformed image reference', argv: () => ['--registry', 'reg:5000/k8s', '--for', 'containerd', '--pause-image', BAD_REF], code: 1, error: /^error: --pause-image: invalid image reference "registry\.k8s\.io\/Pause:3\.10"/},
  {command: 'config', problem: 'unknown runtime version', argv: () => ['--registry', 'reg:5000/k8s', '--for', 'containerd', '--containerd-version', '0.9'], code: 1, error: /^error: unsupported --containerd-version 0\.9/},
  {command: 'config', problem: 'bundle that does not exist', argv: (f) => ['--registry', 'reg:5000/k8s', '--for', 'hosts', '--bundle', f.missing], code: 1, error: (f) => new RegExp(`^error: .*${esc(f.missing)}: no such file or directory`)},
  {command: 'config', problem: 'directory as the bundle', argv: (f) => ['--registry', 'reg:5000/k8s', '--for', 'hosts', '--bundle', f.folder], code: 1, error: (f) => new RegExp(`^error: .*${esc(f.folder)}: is a directory`)},
  {command: 'config', problem: 'corrupt (truncated) bundle', argv: (f) => ['--registry', 'reg:5000/k8s', '--for', 'hosts', '--bundle', f.truncated], code: 1, error: (f) => new RegExp(`^error: .*${esc(f.truncated)}.*truncated`)},
  {command: 'config', problem: 'read-only output directory', needs: 'readOnly', argv: (f) => ['--registry', 'reg:5000/k8s', '--for', 'containerd', '-o', join(f.readOnly!, 'node-config')], code: 1, error: /^error: cannot write --output directory \S*node-config: read-only file system/, hint: /writable file system/},
  {command: 'config', problem: 'password file that does not exist', argv: (f) => ['--registry', 'reg:5000/k8s', '--for', 'secret', '--username', 'u', '--password-file', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read --password-file ${esc(f.missing)}: no such file or directory`)},

  // create
  {command: 'create', problem: 'missing required flag', argv: () => ['--kubernetes-version', 'v1.31.6'], code: 2, error: /^error: missing required flag --output \(-o\)/},
  {command: 'create', problem: 'flag without its value', argv: () => ['--image', PAUSE, '-o'], code: 2, error: /^error: --output needs a value/},
  {command: 'create', problem: 'unknown flag', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--platfrom', 'linux/arm64'], code: 2, error: /^error: unknown flag --platfrom\b/, hint: /did you mean --platform/},
  {command: 'create', problem: 'wrong flag value (integer)', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--concurrency', 'abc'], code: 2, error: /^error: invalid --concurrency: .*abc/},
  {command: 'create', problem: 'wrong flag value (platform)', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--platform', 'linux/', ...noNet(f)], code: 1, error: /^error: invalid platform "linux\/"/, hint: /--platform linux\/arm64/},
  {command: 'create', problem: 'no images', argv: (f) => ['-o', join(f.dir, 'x.tar')], code: 1, error: /^error: no images given/, hint: /--kubernetes-version/},
  {command: 'create', problem: 'malformed image reference', argv: (f) => ['--image', BAD_REF, '-o', join(f.dir, 'x.tar'), ...noNet(f)], code: 1, error: /^error: --image: invalid image reference "registry\.k8s\.io\/Pause:3\.10"/},
  {command: 'create', problem: 'unknown Kubernetes version', argv: (f) => ['--kubernetes-version', 'v1.99.0', '-o', join(f.dir, 'x.tar'), ...noNet(f)], code: 1, error: /^error: Kubernetes v1\.99\.0 /},
  {command: 'create', problem: 'unknown runtime', argv: (f) => ['--runtime', 'containerd@0.9', '-o', join(f.dir, 'x.tar'), ...noNet(f)], code: 1, error: /^error: invalid --runtime "containerd@0\.9"/},
  {command: 'create', problem: 'images file that does not exist', argv: (f) => ['--images-file', f.missing, '-o', join(f.dir, 'x.tar'), ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: cannot read --images-file ${esc(f.missing)}: no such file or directory`)},
  {command: 'create', problem: '--verify-signatures with --no-signatures', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--verify-signatures', '--no-signatures'], code: 2, error: /^error: --verify-signatures needs the signatures that --no-signatures leaves out/},
  {command: 'create', problem: '--trusted-root with --no-signatures', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--trusted-root', f.missing, '--no-signatures'], code: 2, error: /^error: --trusted-root checks the signatures that --no-signatures leaves out/},
  {command: 'create', problem: '--cosign-key without --verify-signatures', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--cosign-key', f.missing], code: 2, error: /^error: --cosign-key and --image-policy are for --verify-signatures/},
  {command: 'create', problem: 'cosign key that does not exist', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--verify-signatures', '--cosign-key', f.missing, ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.missing)}: no such file or directory`)},
  {command: 'create', problem: 'trusted root that is a directory', argv: (f) => ['--image', PAUSE, '-o', join(f.dir, 'x.tar'), '--trusted-root', f.folder, ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: cannot read trusted root ${esc(f.folder)}: is a directory`), hint: /give the path of the trusted root JSON itself \(e\.g\. DIR\/trusted_root\.json\), not of a directory/},
  {command: 'create', problem: 'directory as the output file', argv: (f) => ['--image', PAUSE, '-o', f.folder, ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: --output ${esc(f.folder)} is a directory`)},
  {command: 'create', problem: 'output directory that does not exist', argv: (f) => ['--image', PAUSE, '-o', join(f.missing, 'k8s.tar'), ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: the output directory ${esc(f.missing)} does not exist`), hint: /mkdir -p/},
  {command: 'create', problem: 'read-only output directory', needs: 'readOnly', argv: (f) => ['--image', PAUSE, '-o', join(f.readOnly!, 'k8s.tar'), ...noNet(f)], code: 1, error: (f) => new RegExp(`^error: cannot write the bundle into ${esc(f.readOnly!)}: .*read-only`)},

  // images
  {command: 'images', problem: 'nothing to list', argv: () => [], code: 1, error: /^error: nothing to list/, hint: /--kubernetes-version/},
  {command: 'images', problem: 'unknown flag', argv: () => ['--kubernetes-version', 'v1.31.6', '--wdie'], code: 2, error: /^error: unknown flag --wdie\b/, hint: /did you mean --wide/},
  {command: 'images', problem: 'flag without its value', argv: () => ['--kubernetes-version'], code: 2, error: /^error: --kubernetes-version needs a value/},
  {command: 'images', problem: 'unknown Kubernetes version', argv: () => ['--kubernetes-version', 'v1.99.0'], code: 1, error: /^error: Kubernetes v1\.99\.0 /, hint: /known releases/},
  {command: 'images', problem: 'malformed Kubernetes version', argv: () => ['--kubernetes-version', 'one.thirty'], code: 1, error: /^error: invalid Kubernetes version "one\.thirty"/},
  {command: 'images', problem: 'unknown runtime', argv: () => ['--kubernetes-version', 'v1.31.6', '--runtime', 'containerd@0.9'], code: 1, error: /^error: invalid --runtime "containerd@0\.9"/, hint: /series/},
  {command: 'images', problem: 'malformed image reference', argv: () => ['--image', BAD_REF], code: 1, error: /^error: --image: invalid image reference "registry\.k8s\.io\/Pause:3\.10"/},
  {command: 'images', problem: 'images file that is a directory', argv: (f) => ['--images-file', f.folder], code: 1, error: (f) => new RegExp(`^error: cannot read --images-file ${esc(f.folder)}: is a directory`), hint: /the images list itself \(e\.g\. DIR\/images\.txt\)/},
  {command: 'images', problem: 'manifests that do not exist', argv: (f) => ['--from-manifests', f.missing], code: 1, error: (f) => new RegExp(`^error: .*${esc(f.missing)}.*no such file or directory`)},

  // inspect
  {command: 'diff', problem: 'missing argument', argv: (f) => [f.good], code: 2, error: /^error: missing argument NEW/},
  {command: 'diff', problem: 'a file that does not exist', argv: (f) => [f.good, f.missing], code: 1, error: (f) => new RegExp(`^error: ${esc(f.missing)}: no such file`)},
  {command: 'diff', problem: 'a directory', argv: (f) => [f.folder, f.good], code: 1, error: /^error: .*(directory|EISDIR|neither a tar nor)/},
  {command: 'diff', problem: 'a truncated bundle', argv: (f) => [f.truncated, f.good], code: 1, error: /^error: /, hint: /copy|again|truncated/i},
  {command: 'diff', problem: 'unknown flag', argv: (f) => [f.good, f.good, '--platfrom', 'linux/amd64'], code: 2, error: /^error: unknown flag --platfrom\b/, hint: /did you mean --platform/},
  {command: 'inspect', problem: 'missing argument', argv: () => [], code: 2, error: /^error: missing argument BUNDLE/},
  {command: 'inspect', problem: 'unknown flag', argv: (f) => [f.good, '--wide'], code: 2, error: /^error: unknown flag --wide\b/},
  {command: 'inspect', problem: 'bundle that does not exist', argv: (f) => [f.missing], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.missing)}: no such file or directory`)},
  {command: 'inspect', problem: 'directory as the bundle', argv: (f) => [f.folder], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.folder)}: is a directory`), hint: /give the path of a file \(e\.g\. DIR\/k8s\.tar\), not of a directory/},
  {command: 'inspect', problem: 'corrupt (truncated) bundle', argv: (f) => [f.truncated], code: 1, error: (f) => new RegExp(`^error: ${esc(f.truncated)} does not verify: .*truncated`), hint: /copy the bundle again/},

  // load (install.sh's exit codes)
  {command: 'load', problem: 'missing argument', argv: () => [], code: 2, error: /^error: missing argument BUNDLE/},
  {command: 'load', problem: 'unknown flag', argv: (f) => [f.good, '--namespce', 'k8s.io'], code: 2, error: /^error: unknown flag --namespce\b/, hint: /did you mean --namespace/},
  {command: 'load', problem: 'unknown runtime', argv: (f) => [f.good, '--runtime', 'containerd@0.9'], code: 2, error: /^error: invalid --runtime "containerd@0\.9": expected one of/},
  {command: 'load', problem: 'wrong flag value (platform)', argv: (f) => [f.good, '--platform', 'linux/', '--dry-run'], code: 1, error: /^error: invalid platform "linux\/"/},
  {command: 'load', problem: 'bundle that does not exist', argv: (f) => [f.missing], code: 4, error: (f) => new RegExp(`^error: bundle ${esc(f.missing)}: no such file or directory`), hint: /check the path/},
  {command: 'load', problem: 'directory as the bundle', argv: (f) => [f.folder], code: 4, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.folder)}: is a directory`)},
  {command: 'load', problem: 'corrupt (truncated) bundle', argv: (f) => [f.truncated, '--verify-only'], code: 4, error: (f) => new RegExp(`^error: ${esc(f.truncated)}: .*truncated`)},
  {command: 'load', problem: 'corrupt (one byte flipped) bundle', argv: (f) => [f.flipped, '--verify-only'], code: 4, error: (f) => new RegExp(`^error: blob sha256:[0-9a-f]{64} in ${esc(f.flipped)} is corrupt`), stdout: /^kubeferry: bundle /},
  {command: 'load', problem: '--cosign-key without --verify-images', argv: (f) => [f.good, '--cosign-key', f.missing], code: 2, error: /^error: --cosign-key and --image-policy are for --verify-images/},
  {command: 'load', problem: 'trusted root that is /dev/null', argv: (f) => [f.good, '--verify-images', '--trusted-root', '/dev/null', '--dry-run'], code: 1, error: /^error: cannot read trusted root \/dev\/null: not a regular file/, hint: /regular file/},
  {command: 'load', problem: 'image policy that does not exist', argv: (f) => [f.good, '--verify-images', '--image-policy', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read image policy ${esc(f.missing)}: no such file or directory`)},

  // push
  {command: 'push', problem: 'missing arguments', argv: () => [], code: 2, error: /^error: missing arguments BUNDLE .*REGISTRY/},
  {command: 'push', problem: 'missing second argument', argv: (f) => [f.good], code: 2, error: /^error: missing argument REGISTRY/},
  {command: 'push', problem: 'a pull-only flag', argv: (f) => [f.good, 'reg:5000/k8s', '--mirror', 'registry.k8s.io=http://m'], code: 2, error: /^error: unknown flag --mirror for kubeferry push/},
  {command: 'push', problem: 'wrong flag value (integer)', argv: (f) => [f.good, 'reg:5000/k8s', '--concurrency', 'abc'], code: 2, error: /^error: invalid --concurrency: .*abc/},
  {command: 'push', problem: 'value not among the choices', argv: (f) => [f.good, 'reg:5000/k8s', '--platform-policy', 'some'], code: 2, error: /^error: invalid --platform-policy "some": expected one of auto, sparse, filtered/},
  {command: 'push', problem: 'malformed destination', argv: (f) => [f.good, 'Reg:5000/K8S'], code: 1, error: /^error: invalid registry "Reg:5000\/K8S"/},
  {command: 'push', problem: '--image-policy without --verify-images', argv: (f) => [f.good, 'reg:5000/k8s', '--image-policy', f.missing], code: 2, error: /^error: --cosign-key and --image-policy are for --verify-images/},
  {command: 'push', problem: 'trusted root that is JSON but not a trusted root', argv: (f) => [f.good, '127.0.0.1:9/k8s', '--verify-images', '--trusted-root', f.notTrustedRoot], code: 1, error: (f) => new RegExp(`^error: trusted root ${esc(f.notTrustedRoot)} has mediaType null, not a Sigstore trusted root's`), hint: /trusted_root\.json/},
  {command: 'push', problem: 'cosign key that does not exist', argv: (f) => [f.good, '127.0.0.1:9/k8s', '--verify-images', '--cosign-key', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.missing)}: no such file or directory`)},
  {command: 'push', problem: 'bundle that does not exist', argv: (f) => [f.missing, 'reg:5000/k8s'], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.missing)}: no such file or directory`)},
  {command: 'push', problem: 'directory as the bundle', argv: (f) => [f.folder, 'reg:5000/k8s'], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.folder)}: is a directory`)},
  {command: 'push', problem: 'corrupt (truncated) bundle', argv: (f) => [f.truncated, '127.0.0.1:9/k8s'], code: 1, error: (f) => new RegExp(`^error: ${esc(f.truncated)} does not verify: .*truncated`), hint: /copy it again .*sha256sum -c/},
  {command: 'push', problem: 'registry that does not answer', argv: (f) => [f.good, '127.0.0.1:9/k8s'], code: 1, error: /^error: cannot reach registry 127\.0\.0\.1:9: connection refused/, hint: /^(?!.*--mirror).*curl -v/},
  {command: 'push', problem: 'no credentials for a registry that needs them', needs: 'htpasswd', argv: (f) => [f.good, `${f.htpasswd!.host}/kf-cli-bad-input`], code: 1, error: (f) => new RegExp(`^error: registry ${esc(f.htpasswd!.host)} requires authentication`), hint: /--username/},
  {command: 'push', problem: 'wrong password', needs: 'htpasswd', stdin: 'not-the-password\n', argv: (f) => [f.good, `${f.htpasswd!.host}/kf-cli-bad-input`, '--username', f.htpasswd!.username, '--password-stdin'], code: 1, error: (f) => new RegExp(`^error: registry ${esc(f.htpasswd!.host)} refused user "${esc(f.htpasswd!.username)}"`), hint: /check the password of/},

  // resolve (each reference is reported; the others still resolve)
  {command: 'resolve', problem: 'missing argument', argv: () => [], code: 2, error: /^error: missing argument REFERENCE/},
  {command: 'resolve', problem: 'unknown flag', argv: () => [PAUSE, '--platfrom', 'linux/arm64'], code: 2, error: /^error: unknown flag --platfrom\b/, hint: /did you mean --platform/},
  {command: 'resolve', problem: 'wrong flag value (integer)', argv: () => [PAUSE, '--concurrency', '0'], code: 2, error: /^error: invalid --concurrency: .*0/},
  {command: 'resolve', problem: 'wrong flag value (platform)', argv: (f) => [PAUSE, '--platform', 'linux/', ...noNet(f)], code: 1, error: /^error: invalid platform "linux\/"/},
  {command: 'resolve', problem: 'malformed --mirror', argv: () => [PAUSE, '--mirror', 'not-a-pair'], code: 1, error: /^error: invalid --mirror "not-a-pair"/, hint: /UPSTREAM=URL/},
  {command: 'resolve', problem: 'registry that does not answer', argv: () => ['127.0.0.1:9/pause:3.10'], code: 1, error: /^error: 127\.0\.0\.1:9\/pause:3\.10: cannot reach registry 127\.0\.0\.1:9/, json: 'per-reference'},
  {command: 'resolve', problem: 'malformed image reference', argv: (f) => [BAD_REF, ...noNet(f)], code: 1, error: /^error: registry\.k8s\.io\/Pause:3\.10: invalid image reference/, json: 'per-reference'},

  // serve
  {command: 'serve', problem: 'missing argument', argv: () => [], code: 2, error: /^error: missing argument BUNDLE/},
  {command: 'serve', problem: 'unknown flag', argv: (f) => [f.good, '--port', '5000'], code: 2, error: /^error: unknown flag --port\b/},
  {command: 'serve', problem: 'wrong flag value (integer)', argv: (f) => [f.good, '--grace-period', 'abc'], code: 2, error: /^error: invalid --grace-period: .*abc/},
  {command: 'serve', problem: 'flag that needs another', argv: (f) => [f.good, '--tls-cert', 'mirror.crt'], code: 2, error: /--tls-key/},
  {command: 'serve', problem: 'port already in use', argv: (f) => [f.good, '--listen', `127.0.0.1:${f.busyPort}`], code: 1, error: (f) => new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${f.busyPort}: the address is already in use`), hint: /another process uses that port/},
  {command: 'serve', problem: 'malformed listen address', argv: (f) => [f.good, '--listen', 'nonsense'], code: 1, error: /^error: invalid listen address "nonsense"/},
  {command: 'serve', problem: 'a switch given a value', argv: (f) => [f.good, '--verify=false', '--listen', '127.0.0.1:0'], code: 2, error: /^error: --verify takes no value, it is a switch: "--verify=false"/, hint: /--no-verify/},
  {command: 'serve', problem: '--trusted-root without --verify-images', argv: (f) => [f.good, '--listen', '127.0.0.1:0', '--trusted-root', f.missing], code: 2, error: /^error: --trusted-root is for --verify-images/},
  {command: 'serve', problem: 'image policy that is /dev/null', argv: (f) => [f.good, '--listen', '127.0.0.1:0', '--verify-images', '--image-policy', '/dev/null'], code: 1, error: /^error: cannot read image policy \/dev\/null: not a regular file/},
  {command: 'serve', problem: 'image policy that is a directory', argv: (f) => [f.good, '--listen', '127.0.0.1:0', '--verify-images', '--image-policy', f.folder], code: 1, error: (f) => new RegExp(`^error: cannot read image policy ${esc(f.folder)}: is a directory`), hint: /give the path of the JSON policy file itself \(e\.g\. DIR\/image-policy\.json\)/},
  {command: 'serve', problem: 'image policy of 5 MB', argv: (f) => [f.good, '--listen', '127.0.0.1:0', '--verify-images', '--image-policy', f.oversized], code: 1, error: (f) => new RegExp(`^error: image policy ${esc(f.oversized)} is 5000000 bytes, more than the \\d+ an image policy may be`)},
  {command: 'serve', problem: 'bundle that does not exist', argv: (f) => [f.missing, '--listen', '127.0.0.1:0'], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.missing)}: no such file or directory`)},
  {command: 'serve', problem: 'directory as the bundle', argv: (f) => [f.folder, '--listen', '127.0.0.1:0'], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.folder)}: is a directory`)},
  {command: 'serve', problem: 'corrupt (one byte flipped) bundle', argv: (f) => [f.flipped, '--listen', '127.0.0.1:0'], code: 1, error: (f) => new RegExp(`^error: ${esc(f.flipped)} does not verify: .*sha256:`)},

  // sign (never signs the committed fixture: each row fails before anything is written)
  {command: 'sign', problem: 'missing argument', argv: () => ['--key', 'x.key'], code: 2, error: /^error: missing argument BUNDLE/},
  {command: 'sign', problem: 'missing required flag', argv: (f) => [f.good], code: 2, error: /^error: missing required flag --key\b/},
  {command: 'sign', problem: 'key file that does not exist', argv: (f) => [f.good, '--key', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.missing)}: no such file or directory`)},
  {command: 'sign', problem: 'a directory as the key', argv: (f) => [f.good, '--key', f.folder], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.folder)}: is a directory`), hint: /give the path of the PEM key file itself \(e\.g\. DIR\/cosign\.pub, or DIR\/signer\.key to sign\)/},
  {command: 'verify', problem: 'public key that does not exist', argv: (f) => [f.good, '--key', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.missing)}: no such file or directory`)},
  {command: 'verify', problem: '--require-signatures 0', argv: (f) => [f.good, '--require-signatures', '0'], code: 2, error: /^error: .*--require-signatures/},
  {command: 'verify', problem: '--cosign-key without --images', argv: (f) => [f.good, '--cosign-key', f.missing], code: 2, error: /^error: --cosign-key and --image-policy are for --images/},
  {command: 'verify', problem: 'a switch given a value', argv: (f) => [f.good, '--images=true'], code: 2, error: /^error: --images takes no value, it is a switch: "--images=true"/},
  {command: 'verify', problem: '--trusted-root without --images', argv: (f) => [f.good, '--trusted-root', f.missing], code: 2, error: /^error: --trusted-root is for --images/},
  {command: 'verify', problem: 'trusted root that does not exist', argv: (f) => [f.good, '--images', '--trusted-root', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read trusted root ${esc(f.missing)}: no such file or directory`)},
  {command: 'verify', problem: 'trusted root of 5 MB', argv: (f) => [f.good, '--images', '--trusted-root', f.oversized], code: 1, error: (f) => new RegExp(`^error: trusted root ${esc(f.oversized)} is 5000000 bytes, more than the \\d+ a trusted root may be`)},
  {command: 'verify', problem: 'cosign key of 5 MB', argv: (f) => [f.good, '--images', '--cosign-key', f.oversized], code: 1, error: (f) => new RegExp(`^error: key ${esc(f.oversized)} is 5000000 bytes, more than the \\d+ a key file may be`)},
  {command: 'verify', problem: 'bundle that is /dev/null', argv: () => ['/dev/null'], code: 1, error: /^error: cannot open bundle \/dev\/null: not a regular file/},
  {command: 'verify', problem: 'image policy naming a key that does not exist', argv: (f) => [f.good, '--images', '--image-policy', f.policyMissingKey], code: 1, error: (f) => new RegExp(`^error: image policy ${esc(f.policyMissingKey)}: entry 1 \\(registry\\.k8s\\.io/\\*\\*\\): cannot read key ${esc(join(f.dir, 'nope.pub'))}: no such file or directory`)},
  {command: 'verify', problem: 'cosign key that does not exist', argv: (f) => [f.good, '--images', '--cosign-key', f.missing], code: 1, error: (f) => new RegExp(`^error: cannot read key ${esc(f.missing)}: no such file or directory`)},
  // verify
  // inventory
  {command: 'inventory', problem: 'neither a registry nor --runtime', argv: () => [], code: 2, error: /^error: give either REGISTRY\/PREFIX or --runtime/},
  {command: 'inventory', problem: 'unknown flag', argv: () => ['reg:5000/k8s', '--images-form', 'k8s.lock'], code: 2, error: /^error: unknown flag --images-form\b/, hint: /did you mean --images-from/},
  {command: 'inventory', problem: 'value not among the choices', argv: () => ['--runtime', 'dockerr'], code: 2, error: /^error: invalid --runtime "dockerr"/},
  {command: 'inventory', problem: 'malformed registry', argv: () => ['Reg:5000/K8S', '--repository', 'pause'], code: 1, error: /^error: invalid registry "Reg:5000\/K8S"/},
  {command: 'inventory', problem: '--images-from that does not exist', argv: (f) => ['reg:5000/k8s', '--images-from', f.missing], code: 1, error: (f) => new RegExp(`^error: --images-from ${esc(f.missing)}: no such file`)},

  {command: 'verify', problem: 'missing argument', argv: () => [], code: 2, error: /^error: missing argument BUNDLE/},
  {command: 'verify', problem: 'unknown flag', argv: (f) => [f.good, '--quik'], code: 2, error: /^error: unknown flag --quik\b/, hint: /did you mean --quick/},
  {command: 'verify', problem: 'bundle that does not exist', argv: (f) => [f.missing], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.missing)}: no such file or directory`)},
  {command: 'verify', problem: 'directory as the bundle', argv: (f) => [f.folder], code: 1, error: (f) => new RegExp(`^error: cannot open bundle ${esc(f.folder)}: is a directory`)},
  {command: 'verify', problem: 'corrupt (truncated) bundle', argv: (f) => [f.truncated], code: 1, error: (f) => new RegExp(`^error: ${esc(f.truncated)} failed verification: 1 problem`), hint: /copy it again/},
  {command: 'verify', problem: 'corrupt (one byte flipped) bundle', argv: (f) => [f.flipped], code: 1, error: (f) => new RegExp(`^error: ${esc(f.flipped)} failed verification: \\d+ problems?`), hint: /copy it again/},
]

function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const STACK = /^\s+at \S.*(?:\(|:\d+:\d+)|node:internal\//m

let fixtures: Fixtures
let busy: Server | undefined

test.before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kf-bad-input-'))
  const good = join(projectRoot, 'fixtures/bundles/good.tar')
  const bytes = await readFile(good)
  const truncated = join(dir, 'truncated.tar')
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)))
  const flipped = join(dir, 'flipped.tar')
  await copyFile(join(projectRoot, 'fixtures/bundles/flipped-layer.tar'), flipped) // one byte of a layer flipped
  const folder = join(dir, 'a-directory')
  await mkdir(folder)
  const readOnly = join(dir, 'read-only')
  await mkdir(readOnly)
  let mounted = true
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'kf-bad-input', readOnly], {stdio: 'pipe'})
  } catch {
    mounted = false
  }
  busy = createServer()
  await new Promise<void>((resolve) => busy!.listen(0, '127.0.0.1', resolve))
  const busyPort = (busy.address() as AddressInfo).port
  const notTrustedRoot = join(dir, 'not-a-root.json')
  await writeFile(notTrustedRoot, '{"a": 1}\n')
  const oversized = join(dir, 'oversized.json')
  await writeFile(oversized, '')
  await truncate(oversized, 5_000_000)
  const policyMissingKey = join(dir, 'policy.json')
  await writeFile(policyMissingKey, JSON.stringify({images: [{match: 'registry.k8s.io/**', keys: ['nope.pub']}]}))
  fixtures = {dir, folder, missing: join(dir, 'no-such', 'k8s.tar'), good, truncated, flipped, readOnly: mounted ? readOnly : undefined, deadMirror: 'http://127.0.0.1:9', busyPort, notTrustedRoot, oversized, policyMissingKey}
})

test.after.always(async () => {
  busy?.close()
  if (!fixtures) return
  if (fixtures.readOnly) execFileSync('umount', [fixtures.readOnly], {stdio: 'pipe'})
  await rm(fixtures.dir, {recursive: true, force: true})
})

test('every command has rows for its bad inputs, and every row\'s code is one its help documents', (t) => {
  const commands = new Set(ROWS.map((r) => r.command))
  for (const id of Object.keys(EXIT_CODES)) {
    t.true(commands.has(id), `no rows for ${id}`)
    t.true(ROWS.some((r) => r.command === id && r.code === 2), `${id}: no usage-error row`)
    t.true(ROWS.some((r) => r.command === id && r.code !== 2), `${id}: no row past the parser`)
  }
  for (const r of ROWS) {
    const documented = r.command === '' ? [2] : EXIT_CODES[r.command].map((e) => e.code)
    t.true(documented.includes(r.code), `${r.command} ${r.problem}: exit ${r.code} is not in its EXIT CODES`)
  }
})

function errorPattern(row: Row): RegExp {
  return typeof row.error === 'function' ? row.error(fixtures) : row.error
}

async function plainRun(t: ExecutionContext, row: Row, argv: string[]): Promise<void> {
  const r = await runCli(argv, {stdin: row.stdin, privateHome: true, timeoutMs: 60_000, env: {NO_COLOR: '1', KUBEFERRY_DEBUG: undefined}})
  const shown = `exit ${r.code}\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`
  t.is(r.code, row.code, shown)
  const lines = r.stderr.split('\n')
  const at = lines.findIndex((l) => l.startsWith('error: '))
  t.true(at >= 0, `no error: line\n${shown}`)
  t.regex(lines[at] ?? '', errorPattern(row), 'the error line names the bad item')
  t.regex(lines[at + 1] ?? '', /^ {2}hint: \S/, `a hint follows the error line\n${shown}`)
  if (row.hint) t.regex(lines[at + 1] ?? '', row.hint)
  t.notRegex(r.stderr + r.stdout, STACK, 'no stack trace')
  t.notRegex(r.stderr + r.stdout, /report this as a bug/i)
  const stdout = r.stdout.split('\n').filter(Boolean)
  t.deepEqual(stdout.filter((l) => !row.stdout?.test(l)), [], 'nothing on stdout')
}

async function jsonRun(t: ExecutionContext, row: Row, argv: string[]): Promise<void> {
  const r = await runCli([...argv, '--json'], {stdin: row.stdin, privateHome: true, timeoutMs: 60_000, env: {NO_COLOR: '1', KUBEFERRY_DEBUG: undefined}})
  t.is(r.code, row.code, `--json: exit ${r.code}\n${r.stderr}`)
  let doc: unknown
  try {
    doc = JSON.parse(r.stdout)
  } catch {
    t.fail(`--json: stdout is not one JSON document:\n${r.stdout}\n--- stderr\n${r.stderr}`)
    return
  }
  type ErrorDoc = {code?: string; message?: string; hint?: string}
  let error: ErrorDoc | undefined
  let line = ''
  if (row.json === 'per-reference') {
    const entry = (doc as Array<{reference?: string; error?: ErrorDoc}>).find((e) => e.error)
    error = entry?.error
    line = `error: ${entry?.reference}: ${error?.message}`
  } else {
    error = (doc as {error?: ErrorDoc}).error
    line = `error: ${error?.message}`
  }
  t.truthy(error, `--json: no {"error": …} in\n${r.stdout}`)
  t.regex(line, errorPattern(row), '--json: the message names the bad item')
  t.truthy(error?.code, '--json: the error has a code')
  t.truthy(error?.hint, '--json: the error has a hint')
  if (row.code === 2) t.is(error?.code, 'USAGE')
}

for (const row of ROWS) {
  test(`${row.command || 'kubeferry'}: ${row.problem}`, async (t) => {
    if (row.needs === 'readOnly' && !fixtures.readOnly) {
      t.log('SKIPPED: no read-only file system could be mounted (mount -t tmpfs -o ro needs root)')
      t.pass()
      return
    }
    if (row.needs === 'htpasswd') {
      const peers = needPeers(t, 'registries')
      if (!peers) return
      fixtures.htpasswd = {host: peers.registries.htpasswd.host, username: peers.registries.htpasswd.username!}
    }
    const argv = [...(row.command ? [row.command] : []), ...row.argv(fixtures)]
    await plainRun(t, row, argv)
    await jsonRun(t, row, argv)
  })
}
