package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// MaxBodyBytes is the largest request body any route accepts (64 KiB); a larger one is answered
// 413 payload_too_large without being decoded.
const MaxBodyBytes = 64 << 10

// Decode reads one JSON object from body into v, strictly: unknown members, members given
// twice, member names in another case than v's, numbers sent as strings, trailing data, values
// of the wrong type and bodies over MaxBodyBytes are refused with a *RequestError (400 or 413). An empty body decodes as {} when emptyOK, and is refused otherwise.
func Decode(body []byte, v any, emptyOK bool) error {
	if len(body) > MaxBodyBytes {
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("the body holds %d bytes; at most %d are accepted", len(body), MaxBodyBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return invalid("", "the body must be a JSON object")
	}
	if err := checkStrict(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "the body must hold exactly one JSON object")
	}
	return nil
}

// decodeError turns encoding/json's errors into a 400 that names the field when it can.
func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return invalid("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return invalid("", "the body must be a JSON object, not a %s", typ.Value)
		}
		return invalid(field, "must be %s, not a JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "malformed JSON: the body ends early")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return invalid(strings.Trim(name, `"`), "unknown member")
	}
	return invalid("", "malformed JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "ptr":
		return "a value"
	}
	return "another type"
}
