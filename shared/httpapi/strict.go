package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// What encoding/json accepts and the API does not (docs/openapi.yaml, "Requests"): a member
// given twice (json keeps the last), a member name in another case than the schema's
// ("Entity_ID" for entity_id), and a number sent as a string into a json.Number field
// ("refill_period_seconds": "60"). checkStrict refuses those before Decode decodes; the errors
// it leaves to encoding/json (syntax, types, unknown members) it leaves alone.

var (
	numberType      = reflect.TypeFor[json.Number]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// checkStrict walks the JSON document data against the Go type t (nil: any) and returns a
// *RequestError for the first duplicate member, member in the wrong case or quoted number. A
// document that is not well-formed JSON returns nil: Decode reports that better.
func checkStrict(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walkStrict(dec, t, "")
	if _, ok := err.(*RequestError); ok {
		return err
	}
	return nil
}

// walkStrict reads one value from dec. t is the Go type it decodes into (nil when unknown or
// decoded by custom code: then only duplicates are checked); path names it in errors.
func walkStrict(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType)) && t != numberType {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			return walkObject(dec, t, path)
		case '[':
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for i := 0; dec.More(); i++ {
				if err := walkStrict(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			return err
		}
	case string:
		if t == numberType {
			return invalid(path, "must be a number, not a string")
		}
	}
	return nil
}

// walkObject reads the members of an object whose '{' was read.
func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		member := key
		if path != "" {
			member = path + "." + key
		}
		if seen[key] {
			return invalid(member, "given twice")
		}
		seen[key] = true
		var vt reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Map:
				vt = t.Elem()
			case reflect.Struct:
				f, exact, ok := structMember(t, key)
				if ok && !exact {
					return invalid(member, "unknown member; member names are case-sensitive: %q", f)
				}
				if ok {
					vt = fieldType(t, f)
				}
			}
		}
		if err := walkStrict(dec, vt, member); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// structMember finds the JSON member name of struct t that key names: exactly, or only when
// case is ignored (as encoding/json matches).
func structMember(t reflect.Type, key string) (name string, exact, ok bool) {
	for i := range t.NumField() {
		n := jsonName(t.Field(i))
		switch {
		case n == "":
		case n == key:
			return n, true, true
		case strings.EqualFold(n, key):
			name, ok = n, true
		}
	}
	return name, false, ok
}

// fieldType returns the type of the field of t whose JSON name is name.
func fieldType(t reflect.Type, name string) reflect.Type {
	for i := range t.NumField() {
		if jsonName(t.Field(i)) == name {
			return t.Field(i).Type
		}
	}
	return nil
}

// jsonName returns the member name encoding/json uses for f ("" when it skips f).
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	if n, _, _ := strings.Cut(tag, ","); n != "" {
		return n
	}
	return f.Name
}
