# Runs mbx-bench --quick --json JSON and checks that the file holds every
# field issue 8 names, as a number. Never looks at the figures themselves.
set(fields rtt_p50_us rtt_p99_us floor_p50_us floor_p99_us dbus_p50_us exec_p50_us
    pipelined_rps idle10k_rss_mib idle10k_active_p99_us decide_ns_10k_rules
    fair_alone_p99_us fair_quiet_p99_us device_service_us)
file(REMOVE ${JSON})
execute_process(COMMAND ${BENCH} --quick --json ${JSON} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mbx-bench --quick exited with ${rc}")
endif()
if(NOT EXISTS ${JSON})
  message(FATAL_ERROR "mbx-bench did not write ${JSON}")
endif()
file(READ ${JSON} text)
foreach(f IN LISTS fields)
  string(JSON type ERROR_VARIABLE err TYPE "${text}" ${f})
  if(err OR NOT type STREQUAL "NUMBER")
    message(FATAL_ERROR "${JSON}: field ${f} is missing or not a number (${type} ${err})")
  endif()
endforeach()
message(STATUS "${JSON}: all fields present")
