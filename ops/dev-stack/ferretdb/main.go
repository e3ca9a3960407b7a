// Command ferretdb runs FerretDB v1 as the development stand-in for MongoDB, on its PostgreSQL backend
// (--postgresql-url, the default of the dev and test stack) or its SQLite backend (--sqlite-dir).
//
// It embeds github.com/FerretDB/FerretDB/ferretdb because a plain `go install` of cmd/ferretdb
// panics at start-up for lack of the version.txt file that release builds generate.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address for the MongoDB wire protocol")
	sqliteDir := flag.String("sqlite-dir", "", "directory that holds one SQLite file per database (SQLite backend)")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL connection URL (PostgreSQL backend)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	if (*sqliteDir == "") == (*postgresURL == "") {
		fmt.Fprintln(os.Stderr, "ferretdb: exactly one of --sqlite-dir or --postgresql-url is required")
		os.Exit(2)
	}
	config := ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listenAddr}}
	if *postgresURL != "" {
		config.Handler = "postgresql"
		config.PostgreSQLURL = *postgresURL
	} else {
		dir, err := filepath.Abs(*sqliteDir)
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb: cannot use --sqlite-dir: %v\n", err)
			os.Exit(2)
		}
		config.Handler = "sqlite"
		config.SQLiteURL = "file:" + dir + "/"
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: bad --log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	config.Logger = logger
	db, err := ferretdb.New(&config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logger.Info("ferretdb listening", "addr", *listenAddr, "backend", config.Handler)
	db.Run(ctx)
}
