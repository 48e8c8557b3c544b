package ear

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// AR4SI trust-claim names, in the order they appear in a serialised vector.
const (
	ClaimInstanceIdentity = "instance-identity"
	ClaimConfiguration    = "configuration"
	ClaimExecutables      = "executables"
	ClaimFileSystem       = "file-system"
	ClaimHardware         = "hardware"
	ClaimRuntimeOpaque    = "runtime-opaque"
	ClaimStorageOpaque    = "storage-opaque"
	ClaimSourcedData      = "sourced-data"
)

// ClaimNames returns the eight trust-claim names in serialisation order.
func ClaimNames() []string {
	return []string{
		ClaimInstanceIdentity, ClaimConfiguration, ClaimExecutables, ClaimFileSystem,
		ClaimHardware, ClaimRuntimeOpaque, ClaimStorageOpaque, ClaimSourcedData,
	}
}

// IsClaimName reports whether name is one of the eight AR4SI trust claims.
func IsClaimName(name string) bool {
	var v TrustVector
	return v.slot(name) != nil
}

// TrustVector is an AR4SI trustworthiness vector. A nil field is a claim that
// was not set; it is omitted from the JSON form.
type TrustVector struct {
	InstanceIdentity *int8
	Configuration    *int8
	Executables      *int8
	FileSystem       *int8
	Hardware         *int8
	RuntimeOpaque    *int8
	StorageOpaque    *int8
	SourcedData      *int8
}

func (v *TrustVector) slot(name string) **int8 {
	switch name {
	case ClaimInstanceIdentity:
		return &v.InstanceIdentity
	case ClaimConfiguration:
		return &v.Configuration
	case ClaimExecutables:
		return &v.Executables
	case ClaimFileSystem:
		return &v.FileSystem
	case ClaimHardware:
		return &v.Hardware
	case ClaimRuntimeOpaque:
		return &v.RuntimeOpaque
	case ClaimStorageOpaque:
		return &v.StorageOpaque
	case ClaimSourcedData:
		return &v.SourcedData
	}
	return nil
}

// fields returns the claims in serialisation order.
func (v *TrustVector) fields() [8]*int8 {
	return [8]*int8{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem,
		v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData}
}

// Set sets the named claim. Unknown names and values outside the int8 range
// are rejected.
func (v *TrustVector) Set(name string, val int) error {
	p := v.slot(name)
	if p == nil {
		return fmt.Errorf("ear: unknown trust claim %q", name)
	}
	if val < math.MinInt8 || val > math.MaxInt8 {
		return fmt.Errorf("ear: trust claim %q value %d out of range [-128, 127]", name, val)
	}
	b := int8(val)
	*p = &b
	return nil
}

// Get returns the named claim and whether it is set.
func (v TrustVector) Get(name string) (int8, bool) {
	p := v.slot(name)
	if p == nil || *p == nil {
		return 0, false
	}
	return **p, true
}

// IsEmpty reports whether no claim is set.
func (v TrustVector) IsEmpty() bool {
	for _, f := range v.fields() {
		if f != nil {
			return false
		}
	}
	return true
}

// Status returns the worst tier over the set claims (StatusNone if none is
// set).
func (v TrustVector) Status() Status {
	st := StatusNone
	for _, f := range v.fields() {
		if f != nil {
			if s := StatusOf(*f); s.WorseThan(st) {
				st = s
			}
		}
	}
	return st
}

// appendJSON appends the JSON object form of v to dst.
func (v TrustVector) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	first := true
	names := ClaimNames()
	for i, f := range v.fields() {
		if f == nil {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, names[i]...)
		dst = append(dst, '"', ':')
		dst = strconv.AppendInt(dst, int64(*f), 10)
	}
	return append(dst, '}')
}

// MarshalJSON writes the set claims in AR4SI order.
func (v TrustVector) MarshalJSON() ([]byte, error) {
	return v.appendJSON(nil), nil
}

// UnmarshalJSON reads a vector object; unknown names and out-of-range values
// are errors.
func (v *TrustVector) UnmarshalJSON(b []byte) error {
	var m map[string]json.Number
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("ear: trust vector: %w", err)
	}
	*v = TrustVector{}
	for k, n := range m {
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return fmt.Errorf("ear: trust claim %q: not an integer: %s", k, n)
		}
		if i < math.MinInt8 || i > math.MaxInt8 {
			return fmt.Errorf("ear: trust claim %q value %d out of range [-128, 127]", k, i)
		}
		if err := v.Set(k, int(i)); err != nil {
			return err
		}
	}
	return nil
}
