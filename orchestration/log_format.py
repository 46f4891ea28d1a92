"""Dagster's console logger in the platform's log format: with DATAPLATFORM_LOG_FORMAT=json, one JSON line per
record with the run id (and the batch id once landing has opened it), masked (observability/logs.py)."""

import logging
import sys

import dagster as dg

from observability.logs import JsonFormatter, route_dlt_logs


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO", description="the logger's threshold"),
     "name": dg.Field(str, is_required=False, default_value="dagster", description="the logger's name")},
    description="Dagster's console logger writing the platform's JSON lines (run id, batch id, masked).",
)
def json_lines_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger(init_context.logger_config["name"],
                            level=logging.getLevelName(init_context.logger_config["log_level"].upper()))
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter())
    logger.addHandler(stream)
    route_dlt_logs()  # a run process started by the daemon or the UI never ran the CLI's set-up
    return logger
