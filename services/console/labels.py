"""Chinese names for the codes pages show: statuses, levels, actions, refusals (catalogue codes are named
from the catalogue itself)."""

from __future__ import annotations

STATUSES = {
    "waiting": "等待前置事项", "queued": "待认领", "claimed": "已认领", "accepted": "已受理",
    "supplement_requested": "待补正材料", "resolved": "已办结", "rejected": "不予受理", "terminated": "已终止",
}
LEVELS = {"community": "社区", "street": "街道", "district": "区"}
ACTIONS = {
    "route": "分派", "claim": "认领", "accept": "受理", "request-supplement": "要求补正",
    "record-supplement": "收到补正",
    "resolve": "办结", "reject": "不予受理", "return": "退单", "custody": "代办交接",
    "release": "前置事项完成，放行",
    "terminate": "终止", "escalate": "上报上级",
}
DEFERRAL_STATES = {"pending": "待补交", "supplied": "已补交", "expired": "逾期未补"}
CUSTODY_STEPS = {"collected_at_home": "上门收取材料", "handed_to_window": "材料交至窗口",
                 "result_collected": "领取办理结果", "result_delivered": "结果送达群众"}
WHISTLE_STATES = {"called": "待报到", "acknowledged": "已报到", "escalated": "超时已上报", "cancelled": "已撤销"}
REPORT_CLASSES = {"simple": "简单类（当场解决）", "complex": "复杂类（部门出具意见）", "special": "特殊类（明确时限）"}
REPORT_STATUSES = {"open": "待处理", "assigned": "处理中", "closed": "已办结", "confirmed": "已回访确认"}

# Why the routing service refused an action, said to the person at the window.
REFUSALS = {
    "transition_not_allowed": "当前状态下不能进行此操作",
    "not_item_owner": "该事项已由他人认领，只有认领人可以办理",
    "claimed_by_other": "该事项已被他人认领",
    "return_limit_passed": "已超过退单时限，不能退单",
    "returns_exhausted": "退单次数已满，须由上级决定，不能再退单",
    "nothing_owed": "该事项没有待补交的材料",
    "no_unit_above": "没有可退回的上级单位",
    "item_forbidden": "该事项不在您的辖区内，无权查看或办理",
    "item_not_found": "没有这个事项",
    "unknown_reason": "原因代码不在目录中",
    "unknown_material": "材料不在该事项的材料清单中",
    "validation_failed": "填写内容不符合要求",
    "unauthenticated": "身份校验未通过，请重新登录",
    "call_forbidden": "无权查看吹哨报到",
    "report_forbidden": "无权查看办不成事反映",
}


def refusal_text(reason: str | None, status: int | None = None) -> str:
    if reason in REFUSALS:
        return REFUSALS[reason]
    if status == 403:
        return "不在您的辖区或权限范围内"
    return "操作未能完成（" + (reason or "未知原因") + "）"
