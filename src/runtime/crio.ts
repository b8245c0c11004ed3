/** CRI-O keeps images in containers-storage; importing for it is the podman/skopeo path. Its config is read by preflight. */
export {ContainersStorageAdapter as CrioAdapter} from './podman.js'

export const CRIO_CONFIG_FILES = ['/etc/crio/crio.conf', '/etc/crio/crio.conf.d']
