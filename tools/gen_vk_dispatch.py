#!/usr/bin/env python3
"""gen_vk_dispatch.py — generates the Vulkan dispatch table of libtaesd from the Khronos registry (vk.xml).

    gen_vk_dispatch.py --registry /usr/share/vulkan/registry/vk.xml \
                       --functions src/vk/functions.txt --out-dir DIR

Writes DIR/vk_dispatch.h and DIR/vk_dispatch.c: a struct with one PFN per listed command and three loaders
(global through vkGetInstanceProcAddr(NULL, ...), instance-level through vkGetInstanceProcAddr(instance, ...),
device-level through vkGetDeviceProcAddr(device, ...)). Each command's level comes from vk.xml (its first
parameter), aliases are resolved, and commands the installed headers only declare behind a platform macro
(VK_USE_PLATFORM_*, VK_ENABLE_BETA_EXTENSIONS) are wrapped in the same #if. Standard library only.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

# Commands loaded with vkGetInstanceProcAddr(NULL, name) (vkGetInstanceProcAddr itself is the entry point).
GLOBAL_COMMANDS = {
    "vkGetInstanceProcAddr",
    "vkCreateInstance",
    "vkEnumerateInstanceVersion",
    "vkEnumerateInstanceLayerProperties",
    "vkEnumerateInstanceExtensionProperties",
}
DEVICE_HANDLES = {"VkDevice", "VkQueue", "VkCommandBuffer"}
# The device loader goes through vkGetDeviceProcAddr, which is itself loaded at instance level.
INSTANCE_EXCEPTIONS = {"vkGetDeviceProcAddr"}


def fail(msg):
    sys.stderr.write("gen_vk_dispatch.py: error: %s\n" % msg)
    sys.exit(1)


def api_ok(elem):
    """True if an element applies to the 'vulkan' API (absent api attribute = every API)."""
    api = elem.get("api")
    return api is None or "vulkan" in api.split(",")


def read_functions(path):
    names = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                if not line.isidentifier():
                    fail("%s:%d: not a command name: %r" % (path, lineno, line))
                if line not in names:
                    names.append(line)
    except OSError as e:
        fail("cannot read %s: %s" % (path, e))
    return names


class Registry:
    def __init__(self, path):
        try:
            self.root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            fail("cannot parse registry %s: %s" % (path, e))
        self.commands = {}   # name -> <command> element with a <proto>
        self.aliases = {}    # alias name -> target name
        for cmds in self.root.findall("commands"):
            for c in cmds.findall("command"):
                if not api_ok(c):
                    continue
                if c.get("alias") is not None:
                    self.aliases[c.get("name")] = c.get("alias")
                    continue
                proto = c.find("proto")
                if proto is None or proto.find("name") is None:
                    continue
                self.commands[proto.find("name").text] = c
        self.protect = {}    # platform name -> macro
        for plats in self.root.findall("platforms"):
            for p in plats.findall("platform"):
                self.protect[p.get("name")] = p.get("protect")
        # Where each command name is required: "core" for a <feature> or an unguarded extension,
        # else the set of protecting macros.
        self.core = set()
        self.guards = {}
        for feat in self.root.findall("feature"):
            if not api_ok(feat):
                continue
            for req in feat.findall("require"):
                if not api_ok(req):
                    continue
                for c in req.findall("command"):
                    self.core.add(c.get("name"))
        for exts in self.root.findall("extensions"):
            for ext in exts.findall("extension"):
                supported = ext.get("supported", "")
                if "vulkan" not in supported.split(","):
                    continue   # disabled / vulkansc-only: not in the vulkan headers
                platform = ext.get("platform")
                macro = None
                if platform is not None:
                    macro = self.protect.get(platform)
                    if macro is None:
                        fail("extension %s names unknown platform %s" % (ext.get("name"), platform))
                elif ext.get("provisional") == "true":
                    macro = "VK_ENABLE_BETA_EXTENSIONS"
                for req in ext.findall("require"):
                    if not api_ok(req):
                        continue
                    for c in req.findall("command"):
                        name = c.get("name")
                        if macro is None:
                            self.core.add(name)
                        else:
                            self.guards.setdefault(name, set()).add(macro)

    def resolve(self, name):
        seen = set()
        target = name
        while target in self.aliases:
            if target in seen:
                fail("alias loop at %s" % target)
            seen.add(target)
            target = self.aliases[target]
        if target not in self.commands:
            fail("command %s is not in the registry" % name)
        return self.commands[target]

    def level(self, name):
        if name in GLOBAL_COMMANDS:
            return "global"
        if name in INSTANCE_EXCEPTIONS:
            return "instance"
        cmd = self.resolve(name)
        param = cmd.find("param")
        first = param.find("type").text if param is not None and param.find("type") is not None else None
        if first in DEVICE_HANDLES:
            return "device"
        return "instance"

    def guard(self, name):
        """None when the command is declared unconditionally, else a sorted list of macros (any one suffices)."""
        if name in self.core:
            return None
        if name in self.guards:
            return sorted(self.guards[name])
        fail("command %s is in the registry but in no supported Vulkan version or extension" % name)


def guarded(lines, macros, indent=""):
    if not macros:
        return lines
    cond = " || ".join("defined(%s)" % m for m in macros)
    return ["#if " + cond] + lines + ["#endif"]


def main():
    ap = argparse.ArgumentParser(description="Generate vk_dispatch.{h,c} from vk.xml")
    ap.add_argument("--registry", required=True, help="path to vk.xml")
    ap.add_argument("--functions", required=True, help="list of commands, one per line (# comments)")
    ap.add_argument("--out-dir", required=True, help="directory for vk_dispatch.h and vk_dispatch.c")
    args = ap.parse_args()

    reg = Registry(args.registry)
    names = read_functions(args.functions)
    # The loaders themselves need these two entry points.
    for required in ("vkGetInstanceProcAddr", "vkGetDeviceProcAddr"):
        if required not in names:
            names.insert(0 if required == "vkGetInstanceProcAddr" else 1, required)

    entries = []   # (name, level, guard)
    for name in names:
        reg.resolve(name)   # errors out if unknown
        entries.append((name, reg.level(name), reg.guard(name)))

    reg_name = os.path.basename(args.registry)
    fn_name = os.path.basename(args.functions)
    banner = [
        "/* Generated by tools/gen_vk_dispatch.py from the Vulkan registry %s and %s." % (reg_name, fn_name),
        " * Do not edit: change the command list and rebuild. */",
    ]

    h = banner + [
        "#ifndef TAESD_VK_DISPATCH_H",
        "#define TAESD_VK_DISPATCH_H",
        "",
        "#ifndef VK_NO_PROTOTYPES",
        "#define VK_NO_PROTOTYPES",
        "#endif",
        "#include <vulkan/vulkan.h>",
        "",
        "/* One function pointer per command; a command the loader, instance or device lacks stays NULL. */",
        "typedef struct vk_dispatch {",
    ]
    for name, level, guard in entries:
        h += guarded(["    PFN_%s %s; /* %s */" % (name, name, level)], guard)
    h += [
        "} vk_dispatch;",
        "",
        "/* Stores gipa and loads the global commands through gipa(NULL, name). */",
        "void vk_dispatch_load_global(vk_dispatch *d, PFN_vkGetInstanceProcAddr gipa);",
        "/* Loads the instance-level commands (including vkGetDeviceProcAddr); call after load_global. */",
        "void vk_dispatch_load_instance(vk_dispatch *d, VkInstance instance);",
        "/* Loads the device-level commands through d->vkGetDeviceProcAddr; call after load_instance. */",
        "void vk_dispatch_load_device(vk_dispatch *d, VkDevice device);",
        "",
        "#endif",
        "",
    ]

    c = banner + [
        '#include "vk_dispatch.h"',
        "",
        "#include <stddef.h>",
        "",
        "void vk_dispatch_load_global(vk_dispatch *d, PFN_vkGetInstanceProcAddr gipa)",
        "{",
        "    d->vkGetInstanceProcAddr = gipa;",
        "    if (!gipa)",
        "        return;",
    ]
    for name, level, guard in entries:
        if level == "global" and name != "vkGetInstanceProcAddr":
            c += guarded(['    d->%s = (PFN_%s)(void (*)(void))gipa(NULL, "%s");' % (name, name, name)], guard)
    c += [
        "}",
        "",
        "void vk_dispatch_load_instance(vk_dispatch *d, VkInstance instance)",
        "{",
        "    PFN_vkGetInstanceProcAddr gipa = d->vkGetInstanceProcAddr;",
        "    if (!gipa)",
        "        return;",
    ]
    for name, level, guard in entries:
        if level == "instance":
            c += guarded(['    d->%s = (PFN_%s)(void (*)(void))gipa(instance, "%s");' % (name, name, name)], guard)
    c += [
        "}",
        "",
        "void vk_dispatch_load_device(vk_dispatch *d, VkDevice device)",
        "{",
        "    PFN_vkGetDeviceProcAddr gdpa = d->vkGetDeviceProcAddr;",
        "    if (!gdpa)",
        "        return;",
    ]
    n_device = 0
    for name, level, guard in entries:
        if level == "device":
            n_device += 1
            c += guarded(['    d->%s = (PFN_%s)(void (*)(void))gdpa(device, "%s");' % (name, name, name)], guard)
    if n_device == 0:
        c += ["    (void)device;"]
    c += ["}", ""]

    try:
        os.makedirs(args.out_dir, exist_ok=True)
        for fname, lines in (("vk_dispatch.h", h), ("vk_dispatch.c", c)):
            path = os.path.join(args.out_dir, fname)
            text = "\n".join(lines)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.replace(tmp, path)
    except OSError as e:
        fail("cannot write to %s: %s" % (args.out_dir, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
