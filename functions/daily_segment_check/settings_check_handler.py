"""settings check: a deployment whose SendTime is earlier than its DailyCheckTime fails, and one
whose QuietHours / BlackoutDates do not make a window (the same start and end, 2027-02-30).

The template's custom resource `SettingsCheck` calls it on create and update: CloudFormation's
Rules cannot compare two times, so the stack is refused here, with the reason, before a send
time could send the daily check's messages a day late. (The functions check it again when they
start.)"""

from dialogue.aws.custom_resource import answer
from dialogue.settings import BadSetting, check_send_time, shop_quiet_hours


def handler(event: dict, context: object) -> dict:
    """CloudFormation shows the reason of a FAILED answer: nothing else needs logging."""
    reason = None
    if event.get("RequestType") != "Delete":  # a stack being deleted is never held back
        properties = event.get("ResourceProperties", {})
        try:
            check_send_time(str(properties.get("DailyCheckTime")),
                            str(properties.get("SendTime")))
            shop_quiet_hours(str(properties.get("QuietHours", "")),
                             str(properties.get("BlackoutDates", "")))
        except BadSetting as e:
            reason = str(e)
    return answer(event, reason)
