package turnout

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// Variable is a variable name resolved once per config version, for the
// prepared path. Safe for concurrent use; usable with every Context of its
// client; survives config updates. Close it when done (a cleanup frees it if
// it is garbage collected first).
type Variable struct {
	h    handle
	name string
}

// Name is the variable's name.
func (v *Variable) Name() string { return v.name }

// Close frees the handle; later decisions with it return the default.
func (v *Variable) Close() error {
	v.h.close()
	return nil
}

// Context is the facets of one unit or request, prepared once, for many
// decisions. Safe for concurrent use. Close it when done (a cleanup frees it
// if it is garbage collected first); Close must not race with other calls
// on the same context.
type Context struct {
	h handle
}

// Close frees the context; later decisions with it return the default.
func (x *Context) Close() error {
	x.h.close()
	return nil
}

func (x *Context) used(p *cContext, v *Variable, vp *cVariable) {
	debugUse(unsafe.Pointer(p))
	debugUse(unsafe.Pointer(vp))
	runtime.KeepAlive(x)
	runtime.KeepAlive(v)
}

func (x *Context) ptrs(v *Variable) (*cContext, *cVariable) {
	if x == nil || v == nil {
		return nil, nil
	}
	return (*cContext)(x.h.get()), (*cVariable)(v.h.get())
}

// Int64 is the hot call: the value of v for this context as an int64, or def
// (not an integer, nothing decided, or a closed handle). It records the
// decision event and allocates nothing.
func (x *Context) Int64(v *Variable, def int64) int64 {
	p, vp := x.ptrs(v)
	r := nativeContextInt64(p, vp, def)
	x.used(p, v, vp)
	return r
}

// Float64 is the hot call for numbers; see Int64.
func (x *Context) Float64(v *Variable, def float64) float64 {
	p, vp := x.ptrs(v)
	r := nativeContextFloat64(p, vp, def)
	x.used(p, v, vp)
	return r
}

// Bool is the hot call for booleans; see Int64.
func (x *Context) Bool(v *Variable, def bool) bool {
	p, vp := x.ptrs(v)
	r := nativeContextBool(p, vp, def)
	x.used(p, v, vp)
	return r
}

// String returns the value of v as a string, or def.
func (x *Context) String(v *Variable, def string) string {
	p, vp := x.ptrs(v)
	if p == nil || vp == nil {
		return def
	}
	r, err := nativeContextString(p, vp, def)
	x.used(p, v, vp)
	if err != nil {
		return def
	}
	return r
}

// JSON returns the value of v as JSON, or nil when nothing decided (fallback).
func (x *Context) JSON(v *Variable) json.RawMessage {
	p, vp := x.ptrs(v)
	if p == nil || vp == nil {
		return nil
	}
	b, err := nativeContextJSON(p, vp, false)
	x.used(p, v, vp)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// Decision returns the full decision for v.
func (x *Context) Decision(v *Variable) (Decision, error) {
	p, vp := x.ptrs(v)
	if p == nil || vp == nil {
		return Decision{}, ErrClosed
	}
	b, err := nativeContextJSON(p, vp, true)
	x.used(p, v, vp)
	if err != nil {
		return Decision{}, err
	}
	return parseDecision(b)
}

// Track records a metric with this context's facets (see Client.Track).
func (x *Context) Track(name string, value float64) error {
	if x == nil {
		return ErrClosed
	}
	p := (*cContext)(x.h.get())
	if p == nil {
		return ErrClosed
	}
	err := nativeContextTrack(p, name, value)
	x.used(p, nil, nil)
	return err
}
