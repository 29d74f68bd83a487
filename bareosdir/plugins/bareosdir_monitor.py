"""What the bundled monitoring plugins share: typed options with defaults,
and the rule that reporting never harms the backup.

A monitoring plugin declares its options in `OPTIONS` and does its work in
`report()`, called on JobEnd after the base class has read the job's
results. Whatever goes wrong there (a server down, slow or refusing, a bad
option, a bug) becomes an M_WARNING job message that says what was tried
and why it failed; the Director always gets bRC_OK. Options are checked when
they arrive: an unknown key or an invalid value is reported then, and a
plugin with an invalid value sends nothing for that job rather than guess
where to send it.
"""

import re
import traceback

import bareosdir
import BareosDirPluginBaseclass

_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


class Option(object):
    """A declared option: default (None: unset) and a parser of the text."""

    def __init__(self, default, parse=str, required=False, secret=False):
        self.default = default
        self.parse = parse
        self.required = required
        self.secret = secret


def _number(parse, value, what):
    try:
        return parse(value)
    except ValueError:
        raise ValueError("not %s" % what) from None


def port(value):
    number = _number(int, value, "a TCP port number")
    if not 0 < number < 65536:
        raise ValueError("not a TCP port number")
    return number


def boolean(value):
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("not one of yes/no, true/false, on/off, 1/0")


def seconds(value):
    number = _number(float, value, "a number of seconds")
    if not 0 < number <= 3600:
        raise ValueError("not a number of seconds above 0 (at most 3600)")
    return number


def one_of(*choices):
    def parse(value):
        number = _number(int, value, "a number")
        if number not in choices:
            raise ValueError("not one of %s"
                             % ", ".join(str(c) for c in choices))
        return number
    return parse


TIMEOUT = Option(10.0, seconds)


class MonitoringPlugin(BareosDirPluginBaseclass.BareosDirPluginBaseclass):
    """Base of the bundled monitoring plugins."""

    # The loader module's name, which starts every job message.
    LABEL = "monitoring plugin"
    OPTIONS = {"timeout": TIMEOUT}

    def __init__(self, *args):
        self.problems = []
        super(MonitoringPlugin, self).__init__(*args)

    def parse_plugin_definition(self, *args):
        super(MonitoringPlugin, self).parse_plugin_definition(*args)
        self.problems = []
        for key in self.options:
            if key not in self.OPTIONS:
                self.warn("unknown option %r ignored (known options: %s)"
                          % (key, ", ".join(sorted(self.OPTIONS))))
        for key, option in self.OPTIONS.items():
            value = option.default
            if key in self.options:
                try:
                    value = option.parse(self.options[key])
                except ValueError as error:
                    shown = "***" if option.secret else self.options[key]
                    self.problem("option %s=%s is invalid: %s"
                                 % (key, shown, error))
            elif option.required:
                self.problem("option %s is required" % key)
            setattr(self, key, value)
        self.check_options()
        # Bad options must not fail the job: they were reported.
        return bareosdir.bRC_OK

    def check_options(self):
        """Cross-option checks of a subclass; call `self.problem()`."""

    def handle_plugin_event(self, *args):
        try:
            super(MonitoringPlugin, self).handle_plugin_event(*args)
            if args[-1] == bareosdir.bDirEventJobEnd:
                if self.problems:
                    bareosdir.DebugMessage(
                        100, "%s: nothing sent, the options are invalid\n"
                        % self.LABEL)
                else:
                    self.report()
        except Exception as error:
            bareosdir.DebugMessage(100, "%s: %s" % (self.LABEL,
                                                    traceback.format_exc()))
            self.warn("internal error, nothing sent: %s: %s"
                      % (type(error).__name__, error))
        return bareosdir.bRC_OK

    def report(self):
        """Send the job's results; called on JobEnd."""
        raise NotImplementedError

    def problem(self, message):
        self.problems.append(message)
        self.warn(message + "; this plugin sends nothing for the job")

    def warn(self, message):
        bareosdir.JobMessage(bareosdir.M_WARNING,
                             "%s: %s" % (self.LABEL, message))

    def job_base_name(self):
        """The job's name without the date suffix of its unique name."""
        return job_base_name(self.jobName)


def job_base_name(unique_name):
    """``BackupClient1.2026-11-27_03.00.00_05`` -> ``BackupClient1``."""
    if not unique_name:
        return ""
    match = _UNIQUE_SUFFIX.match(unique_name)
    return match.group(1) if match else unique_name


_UNIQUE_SUFFIX = re.compile(
    r"^(.*)\.\d{4}-\d{2}-\d{2}_\d{2}\.\d{2}\.\d{2}_\d+$", re.DOTALL)
