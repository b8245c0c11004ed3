#!/usr/bin/env bash
# The README's "Inside the gap" flow with the single files of dist/sea (npm run package), Node.js removed from PATH,
# against test peers (a registry and containerd): create --with-tool, sha256sum -c, verify, load, push, config,
# serve. Writes under /tmp/kf-sea-gapflow; what it loads into containerd (its own namespace) is removed at the end.
set -euo pipefail
PEERS=${1:?usage: gap-flow.sh PEERS_JSON (node dist/test/harness/run.js --serve prints one)}
SEA=$(cd "$(dirname "$0")/../.." && pwd)/dist/sea
OPEN_URL=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['registries']['open']['url'])" "$PEERS")
OPEN_HOST=${OPEN_URL#http://}
CTR=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['containerd']['address'])" "$PEERS")
W=/tmp/kf-sea-gapflow; rm -rf $W; mkdir -p $W/connected $W/gap/bin $W/nobin
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do for f in $d/*; do n=${f##*/}
  case $n in node|nodejs|npm|npx|corepack) ;; *) [ -e $W/nobin/$n ] || ln -s $f $W/nobin/$n ;; esac; done; done
export PATH=$W/nobin
echo "## node on PATH: $(command -v node || echo none)"
echo "## connected side: create --with-tool (the amd64 single file; arm64 taken from beside it)"
$SEA/kubeferry-linux-amd64 create --kubernetes-version v1.31.6 --runtime containerd@1.7 --platform linux/amd64 --platform linux/arm64 \
  --mirror registry.k8s.io=$OPEN_URL -o $W/connected/k8s-v1.31.6.tar --cache-dir $W/cache --with-tool --no-progress 2>&1 | sed "s#$W/##g"
echo "## carried across: $(cd $W/connected && ls | tr '\n' ' ')"
cp $W/connected/* $W/gap/ && cd $W/gap
sha256sum -c k8s-v1.31.6.tar.sha256
install -m 0755 k8s-v1.31.6.kubeferry-linux-amd64 bin/kubeferry; export PATH=$W/gap/bin:$PATH
echo "## kubeferry --version: $(kubeferry --version)"
echo "## verify"; kubeferry verify k8s-v1.31.6.tar | tail -3
NS=kf-sea-gapflow-$$
echo "## load into containerd (namespace $NS)"; kubeferry load k8s-v1.31.6.tar --runtime containerd --address $CTR --namespace $NS | tail -4
ctr -a $CTR -n $NS images ls -q | head -3; echo "  ($(ctr -a $CTR -n $NS images ls -q | wc -l) image names)"
echo "## install.sh (namespace $NS-sh)"; sh k8s-v1.31.6.install.sh k8s-v1.31.6.tar --runtime containerd --address $CTR --namespace $NS-sh 2>&1 | tail -1
ctr -a $CTR -n $NS-sh images ls -q | xargs -r ctr -a $CTR -n $NS-sh images rm >/dev/null
DEST=$OPEN_HOST/sea-gapflow-$$/k8s
echo "## push to $DEST"; kubeferry push k8s-v1.31.6.tar $DEST --no-progress 2>&1 | tail -3
skopeo inspect --tls-verify=false docker://$DEST/kube-apiserver:v1.31.6 --format '  skopeo: {{.Name}} {{.Digest}}'
echo "## config"; kubeferry config --registry $DEST --bundle k8s-v1.31.6.tar --for all --insecure-registry $OPEN_HOST -o $W/gap/node-config | tail -3; ls $W/gap/node-config | head -20 | tr '\n' ' '; echo
echo "## serve"; kubeferry serve k8s-v1.31.6.tar --listen 127.0.0.1:0 --json > $W/serve.json 2>$W/serve.log & SP=$!
for i in $(seq 50); do grep -q listen $W/serve.json 2>/dev/null && break; sleep 0.1; done
echo "  serve said: $(head -c 300 $W/serve.json | tr '\n' ' ')"
HOSTPORT=$(python3 - <<PY
import json,re
d=json.load(open('$W/serve.json'))
s=json.dumps(d); m=re.search(r'127\.0\.0\.1:\d+', s); print(m.group(0))
PY
)
skopeo inspect --tls-verify=false docker://$HOSTPORT/kube-apiserver:v1.31.6 --format '  skopeo via serve: {{.Name}} {{.Digest}}'
kill -TERM $SP; wait $SP || true
ctr -a $CTR -n $NS images ls -q | xargs -r ctr -a $CTR -n $NS images rm >/dev/null
echo "## done"
