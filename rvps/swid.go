package rvps

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// XML namespaces of a TCG PC Client RIM (a SWID tag, ISO/IEC 19770-2).
const (
	swidNS    = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	rimNS     = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
	sha384NS  = "http://www.w3.org/2001/04/xmlenc#sha384"
	maxHashes = 1 << 16 // bound on the Hash<n> attributes read per resource
)

// swidExtractor handles type "swid": the payload is base64 of a SWID /
// TCG RIM XML document. For every <Resource type="Measurement" index="i">
// under the first <Payload>, it yields a reference value named
//
//	<rim:PlatformManufacturerStr, spaces→"_">.<Meta edition>.measurement_<i>
//
// with every "-" in the name replaced by "_", whose value is the list of the
// resource's non-zero sha384-namespace Hash0, Hash1, … attributes (read until
// the first missing index). Resources without a non-zero hash are skipped.
//
// The payload base64 is decoded leniently, as for "sample" (Trustee accepts
// only standard, padded base64). As in Trustee, the manifest signature is NOT
// verified: whoever may
// register reference values can register any.
type swidExtractor struct{}

type swidResource struct {
	index    string
	hasIndex bool
	hashes   map[string]string // local name ("Hash0") -> value
}

func (swidExtractor) Extract(payload string) ([]ReferenceValue, error) {
	raw, err := decodeBase64(payload)
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("decode payload: manifest is not UTF-8")
	}

	var (
		meta         []xml.Attr
		metaFound    bool
		payloadFound bool
		payloadDepth = -1 // depth of the first Payload while inside it
		resources    []swidResource
		depth        int
		sawRoot      bool
	)
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse manifest XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if sawRoot {
					return nil, errors.New("parse manifest XML: more than one root element")
				}
				sawRoot = true
			}
			depth++
			switch {
			case t.Name.Space == swidNS && t.Name.Local == "Meta" && !metaFound:
				meta, metaFound = t.Attr, true
			case t.Name.Space == swidNS && t.Name.Local == "Payload" && !payloadFound:
				payloadFound, payloadDepth = true, depth
			case t.Name.Space == swidNS && t.Name.Local == "Resource" && payloadDepth > 0:
				if r, ok := measurementResource(t.Attr); ok {
					resources = append(resources, r)
				}
			}
		case xml.EndElement:
			if depth == payloadDepth {
				payloadDepth = -1
			}
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) != 0 {
				return nil, errors.New("parse manifest XML: text outside the root element")
			}
		}
	}
	if !sawRoot {
		return nil, errors.New("parse manifest XML: no root element")
	}

	if !metaFound {
		return nil, errors.New("could not find meta information")
	}
	manufacturer, ok := attr(meta, rimNS, "PlatformManufacturerStr")
	if !ok {
		return nil, errors.New("could not find manufacturer information")
	}
	edition, ok := attr(meta, "", "edition")
	if !ok {
		return nil, errors.New("could not find edition information")
	}
	if !payloadFound {
		return nil, errors.New("could not find SWID payload")
	}
	prefix := strings.ReplaceAll(manufacturer, " ", "_") + "." + edition

	var out []ReferenceValue
	for _, r := range resources {
		if !r.hasIndex {
			return nil, errors.New("could not find measurement index")
		}
		var values []string
		for i := 0; i < maxHashes; i++ {
			h, ok := r.hashes["Hash"+strconv.Itoa(i)]
			if !ok {
				break
			}
			if strings.Trim(h, "0") == "" {
				continue // all zeros (or empty): no measurement at this index
			}
			values = append(values, h)
		}
		if len(values) == 0 {
			continue
		}
		v, err := json.Marshal(values)
		if err != nil {
			return nil, err
		}
		name := strings.ReplaceAll(prefix+".measurement_"+r.index, "-", "_")
		out = append(out, ReferenceValue{Name: name, Value: v})
	}
	return out, nil
}

// measurementResource returns the resource described by attrs if its type is
// "Measurement".
func measurementResource(attrs []xml.Attr) (swidResource, bool) {
	if typ, _ := attr(attrs, "", "type"); typ != "Measurement" {
		return swidResource{}, false
	}
	r := swidResource{hashes: map[string]string{}}
	r.index, r.hasIndex = attr(attrs, "", "index")
	for _, a := range attrs {
		if a.Name.Space == sha384NS {
			if _, dup := r.hashes[a.Name.Local]; !dup {
				r.hashes[a.Name.Local] = a.Value
			}
		}
	}
	return r, true
}

// attr returns the value of the first attribute named space:local.
func attr(attrs []xml.Attr, space, local string) (string, bool) {
	for _, a := range attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}
