# An old-style class-based plugin, as written against the 2017-era
# BareosDirPluginBaseclass: context first everywhere.
import bareosdir
import bareos_dir_consts
import BareosDirWrapper
from BareosDirWrapper import *
import BareosDirPluginBaseclass


class BareosDirOldStyle(BareosDirPluginBaseclass.BareosDirPluginBaseclass):

    def __init__(self, context, plugindef):
        super(BareosDirOldStyle, self).__init__(context, plugindef)
        self.events_seen = []

    def parse_plugin_definition(self, context, plugindef):
        result = super(BareosDirOldStyle, self).parse_plugin_definition(context, plugindef)
        if result != bareos_dir_consts.bRCs['bRC_OK']:
            return result
        self.tag = self.options.get('tag', 'none')
        return bareos_dir_consts.bRCs['bRC_OK']

    def handle_plugin_event(self, context, event):
        super(BareosDirOldStyle, self).handle_plugin_event(context, event)
        self.events_seen.append(event)
        if event == bareos_dir_consts.bDirEventType['bDirEventJobEnd']:
            bareosdir.JobMessage(context, bareos_dir_consts.bJobMessageType['M_INFO'],
                                 "old class %s: client=%s status=%s events=%r\n" % (
                                     self.tag, self.jobClient, self.jobStatus, self.events_seen))
        return bareos_dir_consts.bRCs['bRC_OK']


def load_bareos_plugin(context, plugindef):
    BareosDirWrapper.bareos_dir_plugin_object = BareosDirOldStyle(context, plugindef)
    return bareos_dir_consts.bRCs['bRC_OK']
