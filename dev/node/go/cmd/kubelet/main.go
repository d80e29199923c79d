// Command kubelet is the upstream kubelet, built from k8s.io/kubernetes, for the real node
// the end-to-end test of the images runs (containerd and runc on this machine).
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
