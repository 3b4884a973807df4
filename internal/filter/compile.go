package filter

import (
	"fmt"
	"strings"
)

// compiler turns a decoded filter document into a node tree.
type compiler struct {
	conditions int // conditions counted so far, against MaxConditions
}

// compileFilter compiles a filter object (its members are an implicit AND).
// path locates obj in the document, for errors.
func (c *compiler) compileFilter(obj value, path []pathElem) (node, error) {
	var children []node
	for _, m := range obj.members {
		var (
			n   node
			err error
		)
		if strings.HasPrefix(m.key, "$") {
			n, err = c.compileLogical(m.key, m.val, path)
		} else {
			n, err = c.compileField(m.key, m.val, with(path, keyElem(m.key)))
		}
		if err != nil {
			return nil, err
		}
		children = append(children, n)
	}
	return newAnd(children), nil
}

// compileLogical compiles a top-level operator member of the filter object at
// path.
func (c *compiler) compileLogical(op string, operand value, path []pathElem) (node, error) {
	switch op {
	case "$and", "$or":
		if operand.kind != kindArray || len(operand.items) == 0 {
			return nil, errorAt(path, fmt.Sprintf("%s needs a non-empty array of filter objects, got %s", op, describe(operand)))
		}
		children := make([]node, 0, len(operand.items))
		for i, item := range operand.items {
			itemPath := with(path, keyElem(op), indexElem(i))
			if item.kind != kindObject {
				return nil, errorAt(itemPath, fmt.Sprintf("%s element must be a filter object, got %s", op, describe(item)))
			}
			n, err := c.compileFilter(item, itemPath)
			if err != nil {
				return nil, err
			}
			children = append(children, n)
		}
		if op == "$and" {
			return newAnd(children), nil
		}
		return newOr(children), nil
	case "$not":
		if operand.kind != kindObject {
			return nil, errorAt(path, fmt.Sprintf("$not needs a filter object, got %s", describe(operand)))
		}
		n, err := c.compileFilter(operand, with(path, keyElem(op)))
		if err != nil {
			return nil, err
		}
		return notNode{child: n}, nil
	}
	if _, ok := fieldOps[op]; ok {
		return nil, errorAt(path, fmt.Sprintf(`%s is a field operator; write {"field": {"%s": ...}}`, op, op))
	}
	return nil, errorAt(path, fmt.Sprintf("unknown operator %q", op))
}

var fieldOps = map[string]op{
	"$eq":     opEq,
	"$ne":     opNe,
	"$gt":     opGt,
	"$gte":    opGte,
	"$lt":     opLt,
	"$lte":    opLte,
	"$in":     opIn,
	"$nin":    opNin,
	"$exists": opExists,
}

// compileField compiles the member key: operand of a filter object; path
// ends with key.
func (c *compiler) compileField(key string, operand value, path []pathElem) (node, error) {
	segments, err := splitPath(key)
	if err != nil {
		return nil, errorAt(path, err.Error())
	}
	n := &fieldNode{name: key, segments: segments}
	if !isOperatorObject(operand) {
		if err := c.count(1, path); err != nil {
			return nil, err
		}
		n.conds = []cond{{op: opEq, operand: operand}}
		return n, nil
	}
	// A field object's keys are either all operators or all plain keys;
	// mixing them is almost always a mistake, and guessing which the user
	// meant would silently match the wrong records.
	firstOp, firstPlain := "", ""
	for _, m := range operand.members {
		if strings.HasPrefix(m.key, "$") {
			if firstOp == "" {
				firstOp = m.key
			}
		} else if firstPlain == "" {
			firstPlain = m.key
		}
	}
	if firstPlain != "" {
		return nil, errorAt(path, fmt.Sprintf("object mixes operators (%s) and plain keys (%q); to match an object literally, use $eq", firstOp, firstPlain))
	}
	if err := c.count(len(operand.members), path); err != nil {
		return nil, err
	}
	n.conds = make([]cond, 0, len(operand.members))
	for _, m := range operand.members {
		cd, err := c.compileCond(key, m.key, m.val, path)
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cd)
	}
	return n, nil
}

// count adds n conditions, failing past MaxConditions.
func (c *compiler) count(n int, path []pathElem) error {
	c.conditions += n
	if c.conditions > MaxConditions {
		return errorAt(path, fmt.Sprintf("filter has more than MaxConditions (%d) conditions; to test one field against many values, use $in", MaxConditions))
	}
	return nil
}

// isOperatorObject reports whether a field's operand is an operator object
// (as opposed to a literal to compare with): an object with a key starting
// with "$".
func isOperatorObject(v value) bool {
	if v.kind != kindObject {
		return false
	}
	for _, m := range v.members {
		if strings.HasPrefix(m.key, "$") {
			return true
		}
	}
	return false
}

func (c *compiler) compileCond(field, opName string, operand value, path []pathElem) (cond, error) {
	o, ok := fieldOps[opName]
	if !ok {
		switch opName {
		case "$not":
			return cond{}, errorAt(path, fmt.Sprintf(`$not applies to a filter, not to a field's operators; write {"$not": {"%s": {...}}}`, field))
		case "$and", "$or":
			return cond{}, errorAt(path, fmt.Sprintf(`%s applies to filters, not to a field's operators; write {"%s": [{"%s": ...}, ...]}`, opName, opName, field))
		}
		return cond{}, errorAt(path, fmt.Sprintf("unknown operator %q", opName))
	}
	cd := cond{op: o, operand: operand}
	switch o {
	case opGt, opGte, opLt, opLte:
		if operand.kind != kindNumber && operand.kind != kindString {
			return cond{}, errorAt(path, fmt.Sprintf("%s needs a number or string, got %s", opName, describe(operand)))
		}
	case opIn, opNin:
		if operand.kind != kindArray {
			return cond{}, errorAt(path, fmt.Sprintf("%s needs an array, got %s", opName, describe(operand)))
		}
		if len(operand.items) > MaxInList {
			return cond{}, errorAt(path, fmt.Sprintf("%s has %d elements, more than MaxInList (%d)", opName, len(operand.items), MaxInList))
		}
		// An array or object element costs a comparison per candidate
		// value, as a separate $eq would, so it counts as one.
		composites := 0
		for _, it := range operand.items {
			if it.kind == kindArray || it.kind == kindObject {
				composites++
			}
		}
		if err := c.count(composites, path); err != nil {
			return cond{}, err
		}
		cd.list = newInList(operand.items)
	case opExists:
		if operand.kind != kindBool {
			return cond{}, errorAt(path, fmt.Sprintf("$exists needs true or false, got %s", describe(operand)))
		}
	}
	return cd, nil
}

// splitPath splits a dotted field path into the object keys it walks, once
// at Parse time so that Match does not.
func splitPath(key string) ([]string, error) {
	if key == "" {
		return nil, fmt.Errorf("empty field name")
	}
	segments := strings.Split(key, ".")
	for _, s := range segments {
		if s == "" {
			return nil, fmt.Errorf("field path %q has an empty segment", key)
		}
	}
	return segments, nil
}

// newAnd builds the conjunction of children, flattening nested ANDs and
// dropping match-all children, so Match walks one short list.
func newAnd(children []node) node {
	var flat andNode
	for _, c := range children {
		switch c := c.(type) {
		case matchAll:
		case andNode:
			flat = append(flat, c...)
		default:
			flat = append(flat, c)
		}
	}
	switch len(flat) {
	case 0:
		return matchAll{}
	case 1:
		return flat[0]
	}
	return flat
}

// newOr builds the disjunction of children, flattening nested ORs; a
// match-all child makes the whole OR match-all.
func newOr(children []node) node {
	var flat orNode
	for _, c := range children {
		switch c := c.(type) {
		case matchAll:
			return matchAll{}
		case orNode:
			flat = append(flat, c...)
		default:
			flat = append(flat, c)
		}
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return flat
}
