module github.com/example/koa-mongodb/tools/node-images

go 1.24.0
