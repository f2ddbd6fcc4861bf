cmd_Release/fuse3.node := ln -f "Release/obj.target/fuse3.node" "Release/fuse3.node" 2>/dev/null || (rm -rf "Release/fuse3.node" && cp -af "Release/obj.target/fuse3.node" "Release/fuse3.node")
