package main

import (
	"encoding/json"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// outputFlags are every printing command's: -o table|json, and --json,
// the older spelling of -o json.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output `FORMAT`: table (for people) or json (the API's answer, for scripts)"},
		&cli.BoolFlag{Name: "json", Usage: "the same as -o json"},
	}
}

// apiFlags are the flags of a command that reads the API and prints
// what it answers. The API's address, token and CA are global flags
// (globalFlags): any command reads them.
func apiFlags() []cli.Flag { return outputFlags() }

// jsonOutput reports whether the command is to print JSON; a format
// other than table or json is a usage error.
func jsonOutput(c *cli.Context) (bool, error) {
	if c.Bool("json") {
		return true, nil
	}
	switch f := c.String("output"); f {
	case "", "table":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, usagef("-o %q: write table or json", f)
	}
}

// emit prints v as indented JSON with -o json, else through table.
func emit(c *cli.Context, v any, table func(w io.Writer) error) error {
	j, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if j {
		return printJSON(c, v)
	}
	return table(c.App.Writer)
}

func printJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer aligning tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
