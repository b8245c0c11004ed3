import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {passphraseFlags, signingKeyFromFlags} from '../cli/trust-flags.js'

export default class Sign extends BaseCommand {
  static override summary = 'Sign a bundle: add a signature to NAME.tar.sig.json beside it (the bundle is not rewritten).'
  static override description = [
    "Signs an in-toto Statement that names the bundle's sha256 (its file name as the subject), its size and the sha256 of its kubeferry/bundle.json, in a DSSE envelope (payloadType application/vnd.in-toto+json, predicateType https://kubeferry.dev/bundle/v1). A second signer runs the same command later, on another machine: the signature is added beside the first one, over the same statement.",
    'Keys: PEM PKCS#8 ECDSA P-256 or Ed25519, as `openssl genpkey` makes them; an encrypted key takes its passphrase from stdin (--passphrase-stdin) or a named environment variable (--passphrase-env NAME). The bundle is hashed once (a bundle in parts: part after part, each against NAME.parts.sha256) and must match NAME.tar.sha256.',
  ].join('\n\n')
  static override examples = [
    {description: 'Sign with an Ed25519 key (openssl genpkey -algorithm ed25519 -out signer.key):', command: '<%= config.bin %> sign k8s.tar --key signer.key'},
    {description: 'A second signer, with an encrypted key whose passphrase is in $KF_PASS:', command: '<%= config.bin %> sign k8s.tar --key second.key --passphrase-env KF_PASS'},
    {description: 'A bundle in parts (the signature names the whole bundle):', command: '<%= config.bin %> sign k8s.tar.001 --key signer.key --json'},
  ]
  static override args = {bundle: Args.string({description: 'Bundle file (.tar), or its first part (.tar.001) for a bundle in parts.', required: true})}
  static override flags = {
    key: Flags.string({description: 'Private key to sign with (PEM PKCS#8: ECDSA P-256 or Ed25519).', required: true, helpValue: 'FILE', helpGroup: 'SIGNING'}),
    ...passphraseFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Sign)
    const key = await signingKeyFromFlags(flags.key, flags)
    const {signBundle} = await import('../trust/sign.js') // not at the top: oclif may import every command to list them
    const result = await signBundle(args.bundle, key)
    if (flags.json) {
      this.printJson(result)
      return
    }
    const what = result.alreadySigned ? `already signed by ${result.keyFile}; nothing added` : `signed by ${result.keyFile}`
    this.log(`${result.bundle}: ${what} (${result.algorithm}, keyid ${result.keyid})`)
    this.log(`  ${result.signatureFile}: ${result.signatures} signature${result.signatures === 1 ? '' : 's'} over sha256 ${result.statement.sha256} (${result.statement.size} bytes)`)
    this.log(`  check inside: kubeferry verify ${result.bundle} --key SIGNER.pub (or the openssl recipe in the README)`)
  }
}
