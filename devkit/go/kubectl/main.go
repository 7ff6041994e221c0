// Command kubectl is Kubernetes' kubectl, built from the Go module proxy (k8s.io/kubernetes) so that
// the node tests can run the README's kubectl commands on a machine that has none.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
