package turnout

import (
	"encoding/binary"
	"math"
	"time"
)

// Wire form of the facets builder: the binary facets layout of
// ffi/include/turnout.h (TURNOUT_FACETS_BINARY and the TURNOUT_FACET_* tags).
const (
	facetsBinary  = 0xF1
	facetInt64    = 1
	facetFloat64  = 2
	facetBool     = 3
	facetString   = 4
	facetJSONBlob = 5
)

// Facets are the named attributes of one unit or request (passenger, city,
// booking, ...), built with chained setters:
//
//	turnout.NewFacets().Passenger(42).City(10).Booking("ADR-123-2-001")
//
// Integers are exact int64 end to end (ids above 2^53 bucket exactly as in
// every other turnout SDK). Setting a name again replaces its value.
// The builder encodes as it goes (no maps, no JSON), so handing facets to the
// library costs one copy-free pointer. A nil *Facets is the empty set.
//
// A Facets value may be read by many goroutines at once (GetVariable, Track,
// Context) but must not be modified while another goroutine uses it. Hold it
// by pointer: a copied Facets value shares its storage (use Clone).
type Facets struct {
	buf   []byte
	small [112]byte // inline storage: a typical set needs no second allocation
}

// NewFacets returns an empty facet set.
func NewFacets() *Facets {
	f := &Facets{}
	f.buf = append(f.small[:0], facetsBinary)
	return f
}

// FacetsFromJSON returns facets read from a JSON object of name -> string,
// number or boolean (null = absent; {"$int64": "9007199254740993"} for exact
// integers beyond 2^53). The library parses it, with the same rules on every
// platform; an invalid object is reported by the call that uses the facets.
// More setters may be chained after it.
func FacetsFromJSON(object []byte) *Facets {
	return NewFacets().JSON(object)
}

func (f *Facets) start(tag byte, name string) {
	if len(f.buf) == 0 {
		f.buf = append(f.small[:0], facetsBinary)
	}
	f.buf = append(f.buf, tag)
	f.buf = appendText(f.buf, name)
}

func appendText(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Int64 sets an integer facet.
func (f *Facets) Int64(name string, v int64) *Facets {
	f.start(facetInt64, name)
	f.buf = binary.LittleEndian.AppendUint64(f.buf, uint64(v))
	return f
}

// Float64 sets a number facet (integral values bucket like the integer).
func (f *Facets) Float64(name string, v float64) *Facets {
	f.start(facetFloat64, name)
	f.buf = binary.LittleEndian.AppendUint64(f.buf, math.Float64bits(v))
	return f
}

// Bool sets a boolean facet.
func (f *Facets) Bool(name string, v bool) *Facets {
	f.start(facetBool, name)
	if v {
		f.buf = append(f.buf, 1)
	} else {
		f.buf = append(f.buf, 0)
	}
	return f
}

// String sets a string facet.
func (f *Facets) String(name, v string) *Facets {
	f.start(facetString, name)
	f.buf = appendText(f.buf, v)
	return f
}

// JSON sets every member of a JSON object (see FacetsFromJSON), in order.
func (f *Facets) JSON(object []byte) *Facets {
	if len(f.buf) == 0 {
		f.buf = append(f.small[:0], facetsBinary)
	}
	f.buf = append(f.buf, facetJSONBlob)
	f.buf = binary.AppendUvarint(f.buf, uint64(len(object)))
	f.buf = append(f.buf, object...)
	return f
}

// Passenger sets "pax", the passenger id.
func (f *Facets) Passenger(id int64) *Facets { return f.Int64("pax", id) }

// Driver sets "drv", the driver id.
func (f *Facets) Driver(id int64) *Facets { return f.Int64("drv", id) }

// Service sets "svc", the service (vehicle type) id.
func (f *Facets) Service(id int64) *Facets { return f.Int64("svc", id) }

// City sets "city", the city id.
func (f *Facets) City(id int64) *Facets { return f.Int64("city", id) }

// Time sets "ts", the time of the decision in unix seconds (otherwise the
// client's clock is used).
func (f *Facets) Time(t time.Time) *Facets { return f.Int64("ts", t.Unix()) }

// Country sets "country", e.g. "SG".
func (f *Facets) Country(code string) *Facets { return f.String("country", code) }

// Booking sets "booking", the booking code.
func (f *Facets) Booking(code string) *Facets { return f.String("booking", code) }

// Location sets "loc", a geohash or coordinates.
func (f *Facets) Location(loc string) *Facets { return f.String("loc", loc) }

// Session sets "session", the session id.
func (f *Facets) Session(id string) *Facets { return f.String("session", id) }

// Request sets "req", the request id.
func (f *Facets) Request(id string) *Facets { return f.String("req", id) }

// Device sets "device", the device id.
func (f *Facets) Device(id string) *Facets { return f.String("device", id) }

// Tag sets "tag", a user-defined tag.
func (f *Facets) Tag(tag string) *Facets { return f.String("tag", tag) }

// Clone returns an independent copy, to extend without changing f.
func (f *Facets) Clone() *Facets {
	c := &Facets{}
	c.buf = append(c.small[:0], f.encoded()...)
	return c
}

// encoded is what the library reads (nil: no facets).
func (f *Facets) encoded() []byte {
	if f == nil || len(f.buf) <= 1 {
		return nil
	}
	return f.buf
}
