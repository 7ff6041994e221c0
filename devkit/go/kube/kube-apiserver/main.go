// Command kube-apiserver is Kubernetes' API server, built from the Go module
// proxy (k8s.io/kubernetes) for the local control plane of test/cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
