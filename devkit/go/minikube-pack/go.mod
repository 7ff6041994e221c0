module github.com/example/koa-mongodb/tools/minikube-pack

go 1.25

require (
	github.com/docker/docker v28.5.2+incompatible
	github.com/moby/patternmatcher v0.6.0
)

require (
	github.com/containerd/log v0.1.0 // indirect
	github.com/klauspost/compress v1.19.1 // indirect
	github.com/moby/go-archive v0.1.0 // indirect
	github.com/moby/sys/sequential v0.6.0 // indirect
	github.com/moby/sys/user v0.4.0 // indirect
	github.com/moby/sys/userns v0.1.0 // indirect
	github.com/sirupsen/logrus v1.9.4 // indirect
	golang.org/x/sys v0.37.0 // indirect
)
