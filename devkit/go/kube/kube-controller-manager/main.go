// Command kube-controller-manager runs the controllers (Deployments, StatefulSets,
// ReplicaSets, garbage collection, HPA…) of the local control plane.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
