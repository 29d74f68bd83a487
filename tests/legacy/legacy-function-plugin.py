# A Director plugin in the manner of the published Bareos 15-19 examples
# (bareos-dir.py of that era): a context argument everywhere, constants from
# bareos_dir_consts, bRCs['bRC_OK'].  Kept as it was written, on Python 3.
from bareosdir import *
from bareos_dir_consts import bJobMessageType, bDirEventType, bRCs, bDirVariable


def load_bareos_plugin(context, plugindef):
    DebugMessage(context, 100, "load_bareos_plugin called with param: " + plugindef + "\n")
    events = []
    events.append(bDirEventType['bDirEventJobStart'])
    events.append(bDirEventType['bDirEventJobEnd'])
    events.append(bDirEventType['bDirEventJobInit'])
    events.append(bDirEventType['bDirEventJobRun'])
    RegisterEvents(context, events)
    return bRCs['bRC_OK']


def parse_plugin_definition(context, plugindef):
    DebugMessage(context, 100, "parse_plugin_definition called with param: " + plugindef + "\n")
    plugin_options = plugindef.split(":")
    for current_option in plugin_options:
        key, sep, val = current_option.partition("=")
        if val == '':
            continue
        JobMessage(context, bJobMessageType['M_INFO'], "option %s=%s\n" % (key, val))
    return bRCs['bRC_OK']


def handle_plugin_event(context, event):
    if event == bDirEventType['bDirEventJobStart']:
        DebugMessage(context, 100, "bDirEventJobStart event triggered\n")
        jobname = GetValue(context, bDirVariable['bDirVarJobName'])
        JobMessage(context, bJobMessageType['M_INFO'], "Job %s starting\n" % jobname)
    elif event == bDirEventType['bDirEventJobEnd']:
        jobstatus = GetValue(context, bDirVariable['bDirVarJobStatus'])
        JobMessage(context, bJobMessageType['M_INFO'], "Job ended with status %s\n" % chr(jobstatus))
    return bRCs['bRC_OK']
