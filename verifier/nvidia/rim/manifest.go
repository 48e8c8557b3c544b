package rim

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Namespaces of the SWID / TCG RIM document.
const (
	NamespaceSWID   = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	NamespaceTCGRIM = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
	NamespaceSHA384 = "http://www.w3.org/2001/04/xmlenc#sha384"
)

// maxAlternatives bounds the Hash0..HashN attributes of one Resource.
const maxAlternatives = 64

// Manifest is the parsed content of a signed RIM (ISO/IEC 19770-2 SWID tag
// with the TCG RIM information model).
type Manifest struct {
	// Name, TagID, Version and TagVersion are the SoftwareIdentity attributes.
	Name       string
	TagID      string
	Version    string
	TagVersion string
	// Entity names the <Entity> element's name attribute ("NVIDIA Corporation").
	Entity string
	// Meta holds the <Meta> attributes.
	Meta Meta
	// Measurements holds every Resource of type "Measurement" in document
	// order (RIM indices are 0-based).
	Measurements []Measurement
	// Certificates are the certificates embedded in KeyInfo/X509Data, leaf
	// first, as found in the document (not yet verified).
	Certificates []*x509.Certificate
}

// Meta holds the SWID <Meta> attributes NVIDIA sets.
type Meta struct {
	ColloquialVersion       string // driver or VBIOS version, e.g. "550.90.07", "96.00.5E.00.01"
	Product                 string // "GH100"
	Edition                 string // "GPU", "driver", ...
	Revision                string
	PayloadType             string
	BindingSpec             string // tcg:BindingSpec
	BindingSpecVersion      string // tcg:BindingSpecVersion
	PlatformManufacturerID  string // tcg:PlatformManufacturerId
	PlatformManufacturerStr string // tcg:PlatformManufacturerStr
	PlatformModel           string // tcg:PlatformModel
	FirmwareManufacturer    string // tcg:FirmwareManufacturer
	FirmwareManufacturerID  string // tcg:FirmwareManufacturerId ("5703", NRAS oemid)
}

// Measurement is one <Resource type="Measurement">.
type Measurement struct {
	Index  int    // 0-based RIM index; compared with SPDM block Index+1
	Active bool   // only active measurements are compared
	Name   string // e.g. "HashedMeasurement_1_FSP"
	Size   int    // digest size in bytes (48)
	// Alternatives holds Hash0..HashN-1 as lower-case hex; any one matches.
	Alternatives []string
}

// Active returns the active measurements.
func (m *Manifest) Active() []Measurement {
	var out []Measurement
	for _, r := range m.Measurements {
		if r.Active {
			out = append(out, r)
		}
	}
	return out
}

// parseManifest reads the RIM fields from the parsed tree, ignoring the
// signature subtree sig.
func parseManifest(root, sig *node) (*Manifest, error) {
	if root.uri != NamespaceSWID || root.local != "SoftwareIdentity" {
		return nil, fmt.Errorf("%w: document element is {%s}%s, want SWID SoftwareIdentity", ErrMalformed, root.uri, root.local)
	}
	m := &Manifest{}
	m.Name, _ = root.attr("", "name")
	m.TagID, _ = root.attr("", "tagId")
	m.Version, _ = root.attr("", "version")
	m.TagVersion, _ = root.attr("", "tagVersion")
	var sawMeta, sawPayload bool
	for _, el := range root.elements() {
		if el == sig || el.uri != NamespaceSWID {
			continue
		}
		switch el.local {
		case "Entity":
			if m.Entity == "" {
				m.Entity, _ = el.attr("", "name")
			}
		case "Meta":
			if sawMeta {
				return nil, fmt.Errorf("%w: more than one Meta element", ErrMalformed)
			}
			sawMeta = true
			m.Meta = parseMeta(el)
		case "Payload":
			if sawPayload {
				return nil, fmt.Errorf("%w: more than one Payload element", ErrMalformed)
			}
			sawPayload = true
			res, err := parsePayload(el)
			if err != nil {
				return nil, err
			}
			m.Measurements = res
		}
	}
	if !sawMeta {
		return nil, fmt.Errorf("%w: no Meta element", ErrMalformed)
	}
	if !sawPayload {
		return nil, fmt.Errorf("%w: no Payload element", ErrMalformed)
	}
	return m, nil
}

func parseMeta(el *node) Meta {
	get := func(uri, local string) string { v, _ := el.attr(uri, local); return v }
	return Meta{
		ColloquialVersion:       get("", "colloquialVersion"),
		Product:                 get("", "product"),
		Edition:                 get("", "edition"),
		Revision:                get("", "revision"),
		PayloadType:             get("", "PayloadType"),
		BindingSpec:             get(NamespaceTCGRIM, "BindingSpec"),
		BindingSpecVersion:      get(NamespaceTCGRIM, "BindingSpecVersion"),
		PlatformManufacturerID:  get(NamespaceTCGRIM, "PlatformManufacturerId"),
		PlatformManufacturerStr: get(NamespaceTCGRIM, "PlatformManufacturerStr"),
		PlatformModel:           get(NamespaceTCGRIM, "PlatformModel"),
		FirmwareManufacturer:    get(NamespaceTCGRIM, "FirmwareManufacturer"),
		FirmwareManufacturerID:  get(NamespaceTCGRIM, "FirmwareManufacturerId"),
	}
}

func parsePayload(payload *node) ([]Measurement, error) {
	var out []Measurement
	seen := map[int]bool{}
	for _, el := range payload.elements() {
		if el.uri != NamespaceSWID || el.local != "Resource" {
			continue
		}
		if typ, _ := el.attr("", "type"); typ != "Measurement" {
			continue
		}
		r, err := parseResource(el)
		if err != nil {
			return nil, err
		}
		if seen[r.Index] {
			return nil, fmt.Errorf("%w: duplicate measurement index %d", ErrMalformed, r.Index)
		}
		seen[r.Index] = true
		out = append(out, r)
	}
	return out, nil
}

func parseResource(el *node) (Measurement, error) {
	var r Measurement
	intAttr := func(name string, min, max int) (int, error) {
		v, ok := el.attr("", name)
		if !ok {
			return 0, fmt.Errorf("%w: Resource without %s", ErrMalformed, name)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return 0, fmt.Errorf("%w: Resource %s %q out of range", ErrMalformed, name, v)
		}
		return n, nil
	}
	var err error
	if r.Index, err = intAttr("index", 0, 1<<16); err != nil {
		return r, err
	}
	if r.Size, err = intAttr("size", 1, 1024); err != nil {
		return r, err
	}
	alts, err := intAttr("alternatives", 1, maxAlternatives)
	if err != nil {
		return r, err
	}
	active, ok := el.attr("", "active")
	if !ok {
		return r, fmt.Errorf("%w: Resource %d without active", ErrMalformed, r.Index)
	}
	switch strings.ToLower(active) {
	case "true":
		r.Active = true
	case "false":
	default:
		return r, fmt.Errorf("%w: Resource %d active=%q", ErrMalformed, r.Index, active)
	}
	r.Name, _ = el.attr("", "name")
	for k := 0; k < alts; k++ {
		h, ok := el.attr(NamespaceSHA384, "Hash"+strconv.Itoa(k))
		if !ok {
			return r, fmt.Errorf("%w: Resource %d lacks Hash%d", ErrMalformed, r.Index, k)
		}
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != r.Size {
			return r, fmt.Errorf("%w: Resource %d Hash%d is not %d bytes of hex", ErrMalformed, r.Index, k, r.Size)
		}
		r.Alternatives = append(r.Alternatives, hex.EncodeToString(raw))
	}
	return r, nil
}
