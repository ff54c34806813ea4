#!/usr/bin/env bash
# bootstrap-zones.sh writes each storage node's zone into the cluster map:
# it reads the zone of the Kubernetes node every kintsugi-node pod was
# scheduled to (label topology.kubernetes.io/zone), writes it into the
# node's line of cluster-configmap.yaml and applies that file. The file
# stays the map's source of truth: commit it with your other manifests, so
# that applying them again keeps the zones. Run it once, after the
# StatefulSet's pods are scheduled and before the gateways start; a pod's
# zone never changes after that while its volume is zonal.
#
# usage: deploy/kubernetes/bootstrap-zones.sh [-n NAMESPACE]
set -euo pipefail
cd "$(dirname "$0")"
ns=()
if [ "${1:-}" = "-n" ]; then ns=(-n "$2"); fi

for pod in $(kubectl "${ns[@]}" get pods -l app.kubernetes.io/component=storagenode -o jsonpath='{.items[*].metadata.name}'); do
	host=$(kubectl "${ns[@]}" get pod "$pod" -o jsonpath='{.spec.nodeName}')
	if [ -z "$host" ]; then
		echo "pod $pod is not scheduled yet; run again when it is" >&2
		exit 1
	fi
	zone=$(kubectl get node "$host" -o jsonpath='{.metadata.labels.topology\.kubernetes\.io/zone}')
	if [ -z "$zone" ]; then
		echo "node $host of pod $pod has no topology.kubernetes.io/zone label" >&2
		exit 1
	fi
	echo "$pod: $zone" >&2
	sed -i -E "s/(id: $pod,.*zone: )[^}]*\}/\1$zone}/" cluster-configmap.yaml
done
kubectl "${ns[@]}" apply -f cluster-configmap.yaml
