package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dop251/goja"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// shell holds the JavaScript runtime and the globals scripts see.
type shell struct {
	vm     *goja.Runtime
	client *mongo.Client
}

// exitRequest carries quit(code) out of the running script.
type exitRequest struct{ code int }

func newShell(client *mongo.Client, dbName string) *shell {
	s := &shell{vm: goja.New(), client: client}
	vm := s.vm
	must(vm.Set("db", s.database(dbName)))
	must(vm.Set("print", func(call goja.FunctionCall) goja.Value {
		parts := make([]string, len(call.Arguments))
		for i, a := range call.Arguments {
			parts[i] = s.format(a)
		}
		fmt.Println(strings.Join(parts, " "))
		return goja.Undefined()
	}))
	must(vm.Set("printjson", func(v goja.Value) { fmt.Println(s.format(v)) }))
	must(vm.Set("quit", func(call goja.FunctionCall) goja.Value {
		code := 0
		if len(call.Arguments) > 0 {
			code = int(call.Argument(0).ToInteger())
		}
		panic(exitRequest{code})
	}))
	must(vm.Set("sleep", func(ms int64) { time.Sleep(time.Duration(ms) * time.Millisecond) }))
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	must(vm.Set("process", map[string]any{"env": env}))
	return s
}

// runAll runs the --eval code, then the files; the exit code is quit()'s, or 1 on an uncaught error.
func (s *shell) runAll(evals, files []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if q, ok := r.(exitRequest); ok {
				code = q.code
				return
			}
			panic(r)
		}
	}()
	for i, src := range evals {
		value, err := s.run(fmt.Sprintf("<eval %d>", i+1), src)
		if err != nil {
			return s.fail(err)
		}
		// As mongosh does: the value of the last --eval is printed (db.serverStatus().connections).
		if i == len(evals)-1 && value != nil && !goja.IsUndefined(value) && !goja.IsNull(value) {
			fmt.Println(s.format(value))
		}
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return s.fail(err)
		}
		if _, err := s.run(file, string(src)); err != nil {
			return s.fail(err)
		}
	}
	return 0
}

func (s *shell) run(name, src string) (goja.Value, error) {
	value, err := s.vm.RunScript(name, src)
	var exc *goja.Exception
	if errors.As(err, &exc) {
		if q, ok := exc.Value().Export().(exitRequest); ok {
			panic(q)
		}
	}
	return value, err
}

func (s *shell) fail(err error) int {
	var exc *goja.Exception
	if errors.As(err, &exc) {
		fmt.Fprintln(os.Stderr, exc.Error())
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	return 1
}

// database is the JS object behind `db` and getSiblingDB().
func (s *shell) database(name string) *goja.Object {
	vm := s.vm
	o := vm.NewObject()
	// Commands built here stay bson.D all the way: a command's name must be its first key, and a
	// round trip through a JS object made from a Go map would shuffle the keys.
	runDoc := func(dbName string, doc bson.D) goja.Value {
		var res bson.D
		if err := s.client.Database(dbName).RunCommand(context.Background(), doc).Decode(&res); err != nil {
			panic(vm.NewGoError(fmt.Errorf("MongoServerError: %w", err)))
		}
		return s.toJS(res)
	}
	runCommand := func(dbName string, cmd goja.Value) goja.Value { return runDoc(dbName, s.toBSON(cmd)) }
	must(o.Set("getName", func() string { return name }))
	must(o.Set("getSiblingDB", func(other string) *goja.Object { return s.database(other) }))
	must(o.Set("runCommand", func(cmd goja.Value) goja.Value { return runCommand(name, cmd) }))
	must(o.Set("adminCommand", func(cmd goja.Value) goja.Value { return runCommand("admin", cmd) }))
	must(o.Set("serverStatus", func() goja.Value { return runDoc("admin", bson.D{{Key: "serverStatus", Value: 1}}) }))
	must(o.Set("createUser", func(user *goja.Object) goja.Value {
		cmd := bson.D{{Key: "createUser", Value: user.Get("user").String()}, {Key: "pwd", Value: user.Get("pwd").String()}}
		// FerretDB 1.24 has no authorization (roles): any authenticated user may do anything. Say so, and
		// create the user without them rather than fail the image's init.
		if roles := user.Get("roles"); roles != nil && !goja.IsUndefined(roles) {
			fmt.Fprintf(os.Stderr, "mongosh (stand-in): roles %s not enforced by the FerretDB stand-in; creating %q without roles\n",
				s.format(roles), user.Get("user").String())
		}
		cmd = append(cmd, bson.E{Key: "roles", Value: bson.A{}})
		return runDoc(name, cmd)
	}))
	must(o.Set("dropUser", func(user string) goja.Value {
		return runDoc(name, bson.D{{Key: "dropUser", Value: user}})
	}))
	must(o.Set("changeUserPassword", func(user, pwd string) goja.Value {
		return runDoc(name, bson.D{{Key: "updateUser", Value: user}, {Key: "pwd", Value: pwd}})
	}))
	must(o.Set("getUsers", func() goja.Value {
		return runDoc(name, bson.D{{Key: "usersInfo", Value: 1}}).ToObject(vm).Get("users")
	}))
	must(o.Set("getCollection", func(coll string) *goja.Object { return s.collection(name, coll) }))
	return o
}

func (s *shell) collection(dbName, name string) *goja.Object {
	vm := s.vm
	c := s.client.Database(dbName).Collection(name)
	o := vm.NewObject()
	check := func(err error) {
		if err != nil {
			panic(vm.NewGoError(fmt.Errorf("MongoServerError: %w", err)))
		}
	}
	must(o.Set("insertOne", func(doc goja.Value) goja.Value {
		res, err := c.InsertOne(context.Background(), s.toBSON(doc))
		check(err)
		return s.toJS(bson.D{{Key: "acknowledged", Value: true}, {Key: "insertedId", Value: res.InsertedID}})
	}))
	must(o.Set("findOne", func(call goja.FunctionCall) goja.Value {
		filter := bson.D{}
		if len(call.Arguments) > 0 {
			filter = s.toBSON(call.Argument(0))
		}
		var res bson.D
		err := c.FindOne(context.Background(), filter).Decode(&res)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return goja.Null()
		}
		check(err)
		return s.toJS(res)
	}))
	must(o.Set("countDocuments", func(call goja.FunctionCall) int64 {
		filter := bson.D{}
		if len(call.Arguments) > 0 {
			filter = s.toBSON(call.Argument(0))
		}
		n, err := c.CountDocuments(context.Background(), filter)
		check(err)
		return n
	}))
	return o
}

// toBSON converts a JS object into an ordered document (a command's name must stay its first key).
func (s *shell) toBSON(v goja.Value) bson.D {
	o, ok := v.(*goja.Object)
	if !ok {
		panic(s.vm.NewTypeError("expected an object, got %s", v))
	}
	d := bson.D{}
	for _, key := range o.Keys() {
		d = append(d, bson.E{Key: key, Value: s.toBSONValue(o.Get(key))})
	}
	return d
}

func (s *shell) toBSONValue(v goja.Value) any {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	if o, ok := v.(*goja.Object); ok {
		if o.ClassName() == "Array" {
			arr := bson.A{}
			for _, key := range o.Keys() {
				arr = append(arr, s.toBSONValue(o.Get(key)))
			}
			return arr
		}
		if exported, ok := o.Export().(primitive.ObjectID); ok {
			return exported
		}
		return s.toBSON(o)
	}
	switch x := v.Export().(type) {
	case int64:
		if x >= -1<<31 && x < 1<<31 {
			return int32(x)
		}
		return x
	default:
		return x
	}
}

// toJS converts a driver result into plain JS values (numbers as numbers, ids as hex strings).
func (s *shell) toJS(v any) goja.Value {
	return s.vm.ToValue(plain(v))
}

func plain(v any) any {
	switch x := v.(type) {
	case bson.D:
		o := make(map[string]any, len(x))
		for _, e := range x {
			o[e.Key] = plain(e.Value)
		}
		return o
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case primitive.ObjectID:
		return x.Hex()
	case primitive.DateTime:
		return x.Time()
	case int32:
		return int64(x)
	default:
		return x
	}
}

// format renders a value as mongosh would roughly print it: strings raw, the rest as JSON.
func (s *shell) format(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if _, ok := v.Export().(string); ok {
		return v.String()
	}
	b, err := json.Marshal(v.Export())
	if err != nil {
		return v.String()
	}
	return string(b)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
