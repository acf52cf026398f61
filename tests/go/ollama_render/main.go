// Command ollama_render renders Modelfile TEMPLATEs with Go's text/template the way Ollama's chat endpoint feeds
// them, so the tests can hold our Python renderer and the Hugging Face chat templates to the real engine.
//
// Input (stdin): a JSON array of {"template", "system", "messages": [{"role", "content"}]}; "system" is the
// Modelfile's SYSTEM. Output (stdout): a JSON array with one {"prompt"} or {"error"} per input, in order.
// The -date flag (YYYY-MM-DD) fixes what currentDate and yesterdayDate see; without it they use today.
// With -unprintable the input is a JSON array of strings instead, and the output gives for each the code points
// Ollama's Modelfile reader would drop: those strconv.IsPrint rejects, except the space, tab, CR and LF it parses.
//
// What is reproduced of Ollama (its template/template.go and server/routes.go, read, not copied): the Modelfile
// SYSTEM goes first as a system message when the request's first message is not one; every system message is
// joined by a blank line into .System and also kept in .Messages; consecutive messages of one role (tool
// excepted) merge with a blank line; the template runs with missingkey=zero and Ollama's function names.
// Only the .Messages path is emulated: a template that never mentions Messages is refused.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Template string    `json:"template"`
	System   string    `json:"system"`
	Messages []message `json:"messages"`
}

type result struct {
	Prompt *string `json:"prompt,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// templateMessage has the fields Ollama exposes for each message, so a template naming one of them behaves alike.
type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []map[string]any
	ToolName   string
	ToolCallID string
}

func functions(today time.Time) template.FuncMap {
	return template.FuncMap{
		"json": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"currentDate":      func(...string) string { return today.Format("2006-01-02") },
		"yesterdayDate":    func(...string) string { return today.AddDate(0, 0, -1).Format("2006-01-02") },
		"toTypeScriptType": func(any) string { return "any" },
	}
}

// withModelfileSystem puts the Modelfile's SYSTEM first unless the request opens with a system message.
func withModelfileSystem(system string, msgs []message) []message {
	if len(msgs) > 0 && msgs[0].Role != "system" && system != "" {
		return append([]message{{Role: "system", Content: system}}, msgs...)
	}
	return msgs
}

// collate returns every system text joined by a blank line, and the messages with same-role runs merged.
func collate(msgs []message) (string, []*templateMessage) {
	var systems []string
	var out []*templateMessage
	for _, m := range msgs {
		if m.Role == "system" {
			systems = append(systems, m.Content)
		}
		if n := len(out); n > 0 && out[n-1].Role == m.Role && m.Role != "tool" {
			out[n-1].Content += "\n\n" + m.Content
			continue
		}
		out = append(out, &templateMessage{Role: m.Role, Content: m.Content})
	}
	return strings.Join(systems, "\n\n"), out
}

// mentions reports whether a field or variable named name (any case) occurs anywhere in the tree.
func mentions(node parse.Node, name string) bool {
	found := false
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, cmd := range n.Cmds {
					for _, arg := range cmd.Args {
						walk(arg)
					}
				}
			}
		case *parse.FieldNode:
			found = found || containsFold(n.Ident, name)
		case *parse.VariableNode:
			found = found || containsFold(n.Ident, name)
		case *parse.ChainNode:
			found = found || containsFold(n.Field, name)
			walk(n.Node)
		}
	}
	walk(node)
	return found
}

func containsFold(words []string, name string) bool {
	for _, w := range words {
		if strings.EqualFold(w, name) {
			return true
		}
	}
	return false
}

func render(req request, today time.Time) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(functions(today)).Parse(req.Template)
	if err != nil {
		return "", err
	}
	if !mentions(tmpl.Tree.Root, "Messages") {
		return "", errors.New("template does not use .Messages: Ollama's legacy .Prompt path is not emulated")
	}
	if len(req.Messages) == 0 {
		return "", errors.New("no messages: Ollama renders nothing for an empty chat")
	}
	system, msgs := collate(withModelfileSystem(req.System, req.Messages))
	var b strings.Builder
	err = tmpl.Execute(&b, map[string]any{
		"System": system, "Messages": msgs, "Tools": nil, "Response": "",
		"Think": false, "ThinkLevel": "", "IsThinkSet": false,
	})
	return b.String(), err
}

// unprintable lists the code points of s that a Modelfile value loses.
func unprintable(s string) []int {
	dropped := []int{}
	for _, r := range s {
		if !strconv.IsPrint(r) && !strings.ContainsRune(" \t\r\n", r) {
			dropped = append(dropped, int(r))
		}
	}
	return dropped
}

// listUnprintable answers -unprintable: stdin holds a JSON array of strings.
func listUnprintable() error {
	var texts []string
	if err := json.NewDecoder(os.Stdin).Decode(&texts); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	found := make([][]int, len(texts))
	for i, text := range texts {
		found[i] = unprintable(text)
	}
	return json.NewEncoder(os.Stdout).Encode(found)
}

// renderAll answers a render run: stdin holds a JSON array of requests.
func renderAll(today time.Time) error {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	results := make([]result, len(reqs))
	for i, req := range reqs {
		prompt, err := render(req, today)
		if err != nil {
			results[i].Error = err.Error()
		} else {
			results[i].Prompt = &prompt
		}
	}
	return json.NewEncoder(os.Stdout).Encode(results)
}

func main() {
	date := flag.String("date", "", "the day currentDate returns (YYYY-MM-DD; default: today)")
	printMode := flag.Bool("unprintable", false, "report the code points a Modelfile value loses")
	flag.Parse()
	today := time.Now()
	if *date != "" {
		parsed, err := time.Parse("2006-01-02", *date)
		if err != nil {
			fmt.Fprintf(os.Stderr, "-date: %v\n", err)
			os.Exit(2)
		}
		today = parsed
	}
	var err error
	if *printMode {
		err = listUnprintable()
	} else {
		err = renderAll(today)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
