// Package sdkcalls finds, by static analysis, the DynamoDB operations a Go program of the root
// module can make: the IAM actions its role needs, and no more.
//
// Analyze loads the packages of a Go module from source (dependencies from export data: the SDK
// and the standard library are not analysed, only their entry points), builds their SSA form, and
// walks the functions reachable from a main package:
//
//   - a static call reaches its callee; a function or method value reaches that function (a
//     handler passed to lambda.Start is called through reflection);
//   - a call through an interface reaches the method of every concrete type converted to an
//     interface in reachable code that implements it (rapid type analysis); a type converted to
//     an interface of another module (any, error, lambda.Handler…) has all its methods reached,
//     since code outside the module may call any of them;
//   - a reached method of *dynamodb.Client is an operation; so is the operation of a reached
//     dynamodb.New<Operation>Paginator, which calls it.
//
// Each item of a TransactWriteItems is authorized as the item action of its kind, so the walk
// also records which members of types.TransactWriteItem reachable code sets (Put, Update, Delete,
// ConditionCheck), and the index names stored in a QueryInput.IndexName.
package sdkcalls

import (
	"fmt"
	"go/constant"
	"go/types"
	"maps"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/ssa"
	"golang.org/x/tools/go/ssa/ssautil"
)

// Import paths of the DynamoDB client and its types.
const (
	dynamodbPkg = "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	typesPkg    = dynamodbPkg + "/types"
)

// Calls is what one program can ask of DynamoDB.
type Calls struct {
	// Operations are the client's operations reached, such as "UpdateItem" and
	// "TransactWriteItems".
	Operations map[string]bool
	// TransactItems are the members of types.TransactWriteItem set by reached code: "Put",
	// "Update", "Delete", "ConditionCheck".
	TransactItems map[string]bool
	// QueryIndexes are the constant index names stored in QueryInput.IndexName by reached code.
	QueryIndexes map[string]bool
}

// transactItemActions maps a TransactWriteItem member to the IAM action authorizing it.
var transactItemActions = map[string]string{
	"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
	"Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem",
}

// Actions returns the IAM actions the calls need, sorted: "dynamodb:<Operation>" for each
// operation, except that TransactWriteItems needs the item action of each member it sets and
// TransactGetItems needs dynamodb:GetItem (neither has an action of its own).
func (c *Calls) Actions() []string {
	set := map[string]bool{}
	for op := range c.Operations {
		switch op {
		case "TransactWriteItems":
			for m := range c.TransactItems {
				set[transactItemActions[m]] = true
			}
		case "TransactGetItems":
			set["dynamodb:GetItem"] = true
		default:
			set["dynamodb:"+op] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Program is the loaded module, ready to analyse any of its main packages.
type Program struct {
	prog   *ssa.Program
	module string
	pkgs   map[string]*ssa.Package // by import path, the module's own
}

// Load loads every non-test package of the module in dir (its go.mod's folder) from source.
func Load(dir string) (*Program, error) {
	cfg := &packages.Config{Mode: packages.LoadSyntax | packages.NeedModule, Dir: dir, Tests: false}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("load %s: %s", dir, strings.Join(errs, "; "))
	}
	prog, ssaPkgs := ssautil.Packages(pkgs, ssa.InstantiateGenerics)
	prog.Build()
	p := &Program{prog: prog, pkgs: map[string]*ssa.Package{}}
	for i, sp := range ssaPkgs {
		if sp == nil {
			continue
		}
		p.pkgs[pkgs[i].PkgPath] = sp
		if pkgs[i].Module != nil {
			p.module = pkgs[i].Module.Path
		}
	}
	if p.module == "" {
		return nil, fmt.Errorf("load %s: no module", dir)
	}
	return p, nil
}

// own reports whether pkg belongs to the loaded module (its code is analysed).
func (p *Program) own(pkg *types.Package) bool {
	return pkg != nil && (pkg.Path() == p.module || strings.HasPrefix(pkg.Path(), p.module+"/"))
}

// paginator matches the SDK's paginator and waiter constructors, which call one operation.
var paginator = regexp.MustCompile(`^New(\w+)Paginator$`)

// Analyze returns the calls of the main package mainPkg (an import path of the module).
func (p *Program) Analyze(mainPkg string) (*Calls, error) {
	main := p.pkgs[mainPkg]
	if main == nil || main.Func("main") == nil {
		return nil, fmt.Errorf("%s is not a main package of %s", mainPkg, p.module)
	}
	w := &walker{p: p, reached: map[*ssa.Function]bool{}, runtimeTypes: map[string]types.Type{},
		calls: &Calls{Operations: map[string]bool{}, TransactItems: map[string]bool{}, QueryIndexes: map[string]bool{}}}
	w.reach(main.Func("main"))
	w.reach(main.Func("init"))
	for {
		for len(w.queue) > 0 {
			f := w.queue[len(w.queue)-1]
			w.queue = w.queue[:len(w.queue)-1]
			w.visit(f)
		}
		// Interface calls against the concrete types seen so far; new types may have come.
		before := len(w.reached)
		for _, site := range w.invokes {
			for _, t := range w.runtimeTypes {
				w.dispatch(site, t)
			}
		}
		if len(w.reached) == before && len(w.queue) == 0 {
			return w.calls, nil
		}
	}
}

type invoke struct {
	iface  *types.Interface
	method *types.Func
}

type walker struct {
	p            *Program
	reached      map[*ssa.Function]bool
	queue        []*ssa.Function
	invokes      []invoke
	seenInvokes  map[invoke]bool
	runtimeTypes map[string]types.Type // concrete types converted to interfaces, by type string
	calls        *Calls
}

func (w *walker) reach(f *ssa.Function) {
	if f == nil || w.reached[f] {
		return
	}
	w.reached[f] = true
	if f.Blocks == nil {
		w.external(f)
		return
	}
	w.queue = append(w.queue, f)
}

// external records what a function without a body (SDK, standard library) means here.
func (w *walker) external(f *ssa.Function) {
	fn, _ := f.Object().(*types.Func)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != dynamodbPkg {
		return
	}
	if recv := fn.Type().(*types.Signature).Recv(); recv != nil {
		if named := namedOf(recv.Type()); named != nil && named.Obj().Name() == "Client" && fn.Exported() {
			w.calls.Operations[fn.Name()] = true
		}
		return
	}
	if m := paginator.FindStringSubmatch(fn.Name()); m != nil {
		w.calls.Operations[m[1]] = true
	}
}

// namedOf returns the named type of t or of what t points to (aliases resolved), or nil.
func namedOf(t types.Type) *types.Named {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	n, _ := t.(*types.Named)
	return n
}

func (w *walker) visit(f *ssa.Function) {
	for _, b := range f.Blocks {
		for _, instr := range b.Instrs {
			if call, ok := instr.(ssa.CallInstruction); ok {
				c := call.Common()
				if c.IsInvoke() {
					w.addInvoke(invoke{iface: c.Value.Type().Underlying().(*types.Interface), method: c.Method})
				}
			}
			switch in := instr.(type) {
			case *ssa.MakeInterface:
				w.addRuntimeType(in.X.Type(), in.Type())
			case *ssa.FieldAddr:
				w.fieldStore(in)
			}
			var ops [16]*ssa.Value
			for _, op := range instr.Operands(ops[:0]) {
				if op == nil || *op == nil {
					continue
				}
				if fn, ok := (*op).(*ssa.Function); ok {
					w.reach(fn)
				}
			}
		}
	}
}

func (w *walker) addInvoke(site invoke) {
	if w.seenInvokes == nil {
		w.seenInvokes = map[invoke]bool{}
	}
	if w.seenInvokes[site] {
		return
	}
	w.seenInvokes[site] = true
	w.invokes = append(w.invokes, site)
}

// addRuntimeType records that concrete type t becomes a value of interface type iface.
func (w *walker) addRuntimeType(t, iface types.Type) {
	if types.IsInterface(t) {
		return
	}
	key := t.String()
	if _, ok := w.runtimeTypes[key]; !ok {
		w.runtimeTypes[key] = t
	}
	// Code of another module (reflection, fmt, encoding/json, lambda.Start) may call any method
	// of a value it is handed.
	if named := namedOf(iface); named == nil || !w.p.own(named.Obj().Pkg()) {
		mset := w.p.prog.MethodSets.MethodSet(t)
		for i := 0; i < mset.Len(); i++ {
			if fn := w.p.prog.MethodValue(mset.At(i)); fn != nil && fn.Pkg != nil && w.p.own(fn.Pkg.Pkg) {
				w.reach(fn)
			}
		}
	}
}

// dispatch reaches t's implementation of the invoked method, if t implements the interface.
func (w *walker) dispatch(site invoke, t types.Type) {
	if !types.Implements(t, site.iface) {
		return
	}
	sel := w.p.prog.MethodSets.MethodSet(t).Lookup(site.method.Pkg(), site.method.Name())
	if sel == nil {
		return
	}
	w.reach(w.p.prog.MethodValue(sel))
}

// fieldStore records stores to TransactWriteItem members and to QueryInput.IndexName.
func (w *walker) fieldStore(fa *ssa.FieldAddr) {
	named := namedOf(fa.X.Type())
	if named == nil || named.Obj().Pkg() == nil {
		return
	}
	st, ok := named.Underlying().(*types.Struct)
	if !ok {
		return
	}
	field := st.Field(fa.Field).Name()
	pkg, name := named.Obj().Pkg().Path(), named.Obj().Name()
	for _, ref := range *fa.Referrers() {
		store, ok := ref.(*ssa.Store)
		if !ok || store.Addr != fa {
			continue
		}
		switch {
		case pkg == typesPkg && name == "TransactWriteItem":
			w.calls.TransactItems[field] = true
		case pkg == dynamodbPkg && name == "QueryInput" && field == "IndexName":
			w.calls.QueryIndexes[constString(store.Val)] = true
		}
	}
}

// constString returns the string constant v holds or that a call like aws.String("x") returns
// ("?" when it is not known statically).
func constString(v ssa.Value) string {
	switch x := v.(type) {
	case *ssa.Call:
		if args := x.Call.Args; len(args) == 1 {
			return constString(args[0])
		}
	case *ssa.Const:
		if x.Value != nil && x.Value.Kind() == constant.String {
			return constant.StringVal(x.Value)
		}
	}
	return "?" // a value copied from elsewhere (put.TableName and the like)
}
