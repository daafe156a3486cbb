/// An unexpected exception prints one line that names a file with its full text (src/Cli/BugReport.cs).
module DiffusionFunctional.Cli.Tests.BugReportTests

open System.IO
open DiffusionFunctional.Cli
open Expecto

[<Tests>]
let tests =
    testList "bug report" [
        test "the file holds the version, the command line and the exception's stack trace" {
            let dir = Directory.CreateTempSubdirectory("dfn-bug-test").FullName
            try
                let thrown = try failwith "boom inside a command" with e -> e
                let path = BugReport.Write(thrown, [| "train"; "--steps"; "3" |], dir)
                Expect.isNotNull path "a file was written"
                Expect.equal (Path.GetDirectoryName path) dir "in the folder asked for"
                let text = File.ReadAllText path
                Expect.stringStarts text ("dfn " + DfnApp.Version + "\n") "the version first"
                Expect.stringContains text "dfn train --steps 3\n" "the command line"
                Expect.stringContains text "boom inside a command" "the message"
                Expect.stringContains text "   at " "the stack trace"
            finally
                Directory.Delete(dir, true)
        }

        test "a folder that cannot be written gives no file and no exception" {
            Expect.isNull (BugReport.Write(exn "x", [||], "/proc/dfn-no-such-folder")) "null, so the line goes out without it"
        }
    ]
